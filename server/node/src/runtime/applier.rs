//! The replicated state as the consensus layer sees it: committed entries, snapshots, lost
//! proposals, touches and membership changes, handed to the state under its lock.

use crate::observe::telemetry::apply_span;
use crate::runtime::Node;
use crate::state::command::Command;
use std::sync::Arc;
use zooid_replication::{Applier, RestoreError, StateEncoder};
use zooid_tree::DataTree;

/// Commands applied per hold of the state lock (see [`StateApplier::apply`]).
const APPLY_SLICE: usize = 256;

pub struct StateApplier(pub Arc<Node>);

impl Applier for StateApplier {
    fn apply(&self, commands: &[(u64, &[u8])]) {
        // One entry carries up to 65,536 commands. The lock is let go between slices, so a
        // read or a ping waits for at most one slice (each command is a whole txn with its own
        // zxid: a reader between slices sees a state ZooKeeper could have shown).
        for slice in commands.chunks(APPLY_SLICE) {
            let mut state = self.0.state();
            for (zxid, bytes) in slice {
                let zxid = *zxid as i64;
                let cmd = match Command::decode_with(bytes, state.ids_cache()) {
                    Ok(c) => c,
                    Err(e) => {
                        // Every replica decodes the same bytes the same way, so skipping keeps
                        // them identical; it can only mean a bug, so say so loudly.
                        tracing::error!("undecodable command at zxid {zxid}: {e}");
                        continue;
                    }
                };
                // A traced write's apply joins the trace of the request that asked for it.
                let span = cmd
                    .trace
                    .as_ref()
                    .map(|t| apply_span(t, zxid, cmd.op.kind(), state.node_id()));
                let _entered = span.as_ref().map(|s| s.enter());
                state.apply(zxid, cmd);
            }
        }
    }

    fn snapshot(&self) -> StateEncoder {
        // O(1) under the lock; the encode runs on the snapshot thread.
        let frozen = self.0.state().tree().freeze();
        Box::new(move |w| frozen.encode_to(w))
    }

    fn restore(&self, state: &mut dyn std::io::Read) -> Result<(), RestoreError> {
        let tree = DataTree::read_snapshot(state)?;
        self.0.state().install(tree);
        Ok(())
    }

    fn lost(&self, commands: &[&[u8]]) {
        self.0.state().lost(commands);
    }

    fn touched(&self, sessions: &[i64]) {
        self.0.state().touched_elsewhere(sessions);
    }

    fn membership(&self, members: &zooid_replication::Members) {
        let mut st = self.0.state();
        if let Some(m) = members.get(st.node_id()) {
            let observer = self.0.configured_observer() || !m.voter;
            st.set_observer(observer);
        }
        st.membership_changed(members);
    }
}
