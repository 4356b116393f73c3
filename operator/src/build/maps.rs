//! The ConfigMaps: the members' configuration, and the discovery map applications read the
//! connection string from (the keys Stackable's operator made familiar).

use super::config::{DYNAMIC_FILE, STATIC_FILE};
use super::names::*;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

pub fn config_map(
    names: &Names,
    owner: &OwnerReference,
    static_config: &str,
    dynamic_config: &str,
) -> ConfigMap {
    let value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.config_map(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "data": {STATIC_FILE: static_config, DYNAMIC_FILE: dynamic_config},
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed ConfigMap: {e}"))
}

/// `ZOOKEEPER` is the connection string of the members (voters, then observers, which serve
/// clients as well), `ZOOKEEPER_HOSTS` the same, `ZOOKEEPER_CLIENT_PORT` the port,
/// `ZOOKEEPER_SERVICE` the client Service's address.
pub fn discovery_config_map(names: &Names, owner: &OwnerReference, members: &[i64]) -> ConfigMap {
    let hosts: Vec<String> = members
        .iter()
        .map(|id| format!("{}:{CLIENT_PORT}", names.host(*id)))
        .collect();
    let value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.discovery_config_map(),
            "namespace": names.namespace,
            "labels": names.selector(),
            "ownerReferences": [owner],
        },
        "data": {
            "ZOOKEEPER": hosts.join(","),
            "ZOOKEEPER_HOSTS": hosts.join(","),
            "ZOOKEEPER_CLIENT_PORT": CLIENT_PORT.to_string(),
            "ZOOKEEPER_SERVICE": names.client_address(),
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed ConfigMap: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_lists_the_voters() {
        let names = Names::new("coord", "prod");
        let cm = discovery_config_map(&names, &OwnerReference::default(), &[1, 2]);
        let data = cm.data.unwrap();
        assert_eq!(
            data["ZOOKEEPER"],
            "coord-0.coord-peers.prod.svc.cluster.local:2181,\
             coord-1.coord-peers.prod.svc.cluster.local:2181"
        );
        assert_eq!(
            data["ZOOKEEPER_SERVICE"],
            "coord.prod.svc.cluster.local:2181"
        );
    }
}
