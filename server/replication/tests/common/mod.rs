//! An applier for tests: records every command applied, with its zxid.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Mutex;
use zooid_replication::{Applier, StateEncoder};

#[derive(Default)]
pub struct Record(Mutex<Vec<(u64, Vec<u8>)>>);

impl Record {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<(u64, Vec<u8>)> {
        self.0.lock().unwrap().clone()
    }
}

impl Applier for Record {
    fn apply(&self, commands: &[(u64, &[u8])]) {
        let mut v = self.0.lock().unwrap();
        for (zxid, command) in commands {
            v.push((*zxid, command.to_vec()));
        }
    }
    fn snapshot(&self) -> StateEncoder {
        Box::new(|_| Ok(()))
    }
    fn restore(
        &self,
        _state: &mut dyn std::io::Read,
    ) -> Result<(), zooid_replication::RestoreError> {
        Ok(())
    }
}
