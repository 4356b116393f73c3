//! The names of an ensemble's objects and addresses, each derived in one place.

use crate::plan::observed::Set;

/// Ports every member listens on (ZooKeeper's defaults; the election port is written in the
/// server lines, as ZooKeeper's format has it, and not listened on).
pub const CLIENT_PORT: i32 = 2181;
pub const SECURE_CLIENT_PORT: i32 = 2281;
pub const PEER_PORT: i32 = 2888;
pub const ELECTION_PORT: i32 = 3888;
pub const ADMIN_PORT: i32 = 8080;

/// Where a member keeps its data, and reads its configuration.
pub const DATA_DIR: &str = "/data";
pub const CONFIG_DIR: &str = "/etc/zooid";
/// Where the TLS Secrets are mounted: `client/` and `quorum/`.
pub const TLS_DIR: &str = "/etc/zooid-tls";

/// The label that sets observers' pods apart, and its value there.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const OBSERVER_COMPONENT: &str = "observer";

/// The names of one ensemble's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub ensemble: String,
    pub namespace: String,
}

impl Names {
    pub fn new(ensemble: &str, namespace: &str) -> Names {
        Names {
            ensemble: ensemble.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// How the operator's metrics label this Ensemble.
    pub fn metrics_key(&self) -> crate::metrics::Key<'_> {
        crate::metrics::Key {
            namespace: &self.namespace,
            ensemble: &self.ensemble,
        }
    }

    /// The voters' StatefulSet, and the prefix of its pods' names.
    pub fn statefulset(&self) -> String {
        self.ensemble.clone()
    }

    /// The observers' StatefulSet, and the prefix of its pods' names.
    pub fn observer_statefulset(&self) -> String {
        format!("{}-observer", self.ensemble)
    }

    /// The StatefulSet of `set`.
    pub fn statefulset_of(&self, set: Set) -> String {
        match set {
            Set::Voters => self.statefulset(),
            Set::Observers => self.observer_statefulset(),
        }
    }

    /// The set and ordinal of the pod named `pod`, if it is one of this ensemble's members.
    pub fn pod_ordinal(&self, pod: &str) -> Option<(Set, i32)> {
        // The observers' prefix first: it extends the voters'.
        for set in [Set::Observers, Set::Voters] {
            let ordinal = pod
                .strip_prefix(&self.statefulset_of(set))
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|o| o.parse::<i32>().ok())
                .filter(|o| *o >= 0);
            if let Some(ordinal) = ordinal {
                return Some((set, ordinal));
            }
        }
        None
    }

    /// The headless Service that gives each member its DNS name.
    pub fn peers_service(&self) -> String {
        format!("{}-peers", self.ensemble)
    }

    /// The Service clients connect through.
    pub fn client_service(&self) -> String {
        self.ensemble.clone()
    }

    pub fn config_map(&self) -> String {
        format!("{}-config", self.ensemble)
    }

    pub fn discovery_config_map(&self) -> String {
        format!("{}-discovery", self.ensemble)
    }

    /// The Secret with the super user the operator acts as (`credentials`, `user:password`)
    /// and its digest for the members (`digest`, ZooKeeper's superDigest).
    pub fn credentials_secret(&self) -> String {
        format!("{}-operator", self.ensemble)
    }

    pub fn pdb(&self) -> String {
        self.ensemble.clone()
    }

    /// The pod of server `id` (voter ordinal `id - 1`, observer ordinal `id - 101`).
    pub fn pod(&self, id: i64) -> String {
        let set = Set::of(id);
        format!("{}-{}", self.statefulset_of(set), set.ordinal(id))
    }

    /// The volume claim of server `id`, as the StatefulSet names it.
    pub fn volume_claim(&self, id: i64) -> String {
        format!("data-{}", self.pod(id))
    }

    /// The server whose volume claim is named `claim`, if it is one of this ensemble's.
    pub fn claim_server(&self, claim: &str) -> Option<i64> {
        let (set, ordinal) = self.pod_ordinal(claim.strip_prefix("data-")?)?;
        Some(set.server_id(ordinal))
    }

    /// Server `id`'s DNS name, through the headless Service.
    pub fn host(&self, id: i64) -> String {
        format!(
            "{}.{}.{}.svc.cluster.local",
            self.pod(id),
            self.peers_service(),
            self.namespace
        )
    }

    /// The client Service's `host:port`.
    pub fn client_address(&self) -> String {
        format!(
            "{}.{}.svc.cluster.local:{CLIENT_PORT}",
            self.client_service(),
            self.namespace
        )
    }

    /// The labels of `set`'s pods: the ensemble's, and for observers a component label that
    /// keeps them out of the voters' PodDisruptionBudget.
    pub fn labels_of(&self, set: Set) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.selector();
        if set == Set::Observers {
            labels.insert(COMPONENT_LABEL.into(), OBSERVER_COMPONENT.into());
        }
        labels
    }

    /// The labels that select the ensemble's pods (voters and observers).
    pub fn selector(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name".to_string(), "zooid".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.ensemble.clone(),
            ),
        ]
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_name_gives_back_its_server() {
        let n = Names::new("coord", "prod");
        assert_eq!(n.claim_server(&n.volume_claim(4)), Some(4));
        assert_eq!(n.claim_server("data-coordx-1"), None);
        assert_eq!(n.claim_server("data-other-1"), None);
        assert_eq!(n.claim_server("data-coord-"), None);
        assert_eq!(n.claim_server(&n.volume_claim(102)), Some(102));
        assert_eq!(n.claim_server("data-coord-observer-0"), Some(101));
    }

    #[test]
    fn observers_pods_are_named_apart_from_the_voters() {
        let n = Names::new("coord", "prod");
        assert_eq!(n.pod(1), "coord-0");
        assert_eq!(n.pod(101), "coord-observer-0");
        assert_eq!(n.pod_ordinal("coord-observer-2"), Some((Set::Observers, 2)));
        assert_eq!(n.pod_ordinal("coord-2"), Some((Set::Voters, 2)));
        assert_eq!(n.pod_ordinal("coord-observer"), None);
        assert_eq!(n.pod_ordinal("other-1"), None);
        assert_eq!(
            n.host(101),
            "coord-observer-0.coord-peers.prod.svc.cluster.local"
        );
    }
}
