//! A real S3-compatible server for the backup scenarios: moto's server mode (from PyPI, put
//! in a virtualenv by scripts/e2e-operator.sh, named by `ZOOID_TEST_MOTO`), on loopback in
//! the tests' own network namespace. It checks no signatures, so the test reads it plainly.

use std::process::{Child, Command};

pub struct S3 {
    child: Child,
    pub endpoint: String,
    http: reqwest::Client,
}

impl S3 {
    /// `None` when `ZOOID_TEST_MOTO` is not set (the scenario then says so and fails).
    pub async fn start(log: &std::path::Path) -> S3 {
        let moto = std::env::var("ZOOID_TEST_MOTO")
            .expect("ZOOID_TEST_MOTO names moto_server (scripts/e2e-operator.sh installs it)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        super::eventually("moto's S3 server up", 60, || async {
            s3.http.get(&s3.endpoint).send().await.ok()?;
            Some(())
        })
        .await;
        s3
    }

    pub async fn create_bucket(&self, bucket: &str) {
        let r = self
            .http
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "creating bucket {bucket}: {r:?}");
    }

    /// The keys under `prefix`, in order.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let body = self
            .http
            .get(format!(
                "{}/{bucket}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(String::from)
            .collect()
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}/{bucket}/{key}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{bucket}/{key}: {}", r.status());
        r.bytes().await.unwrap().to_vec()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
