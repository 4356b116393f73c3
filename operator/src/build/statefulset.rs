//! The members' StatefulSet: `OnDelete`, so that a pod restarts only when the operator deletes
//! it, in the order it chooses; its pod template carries the revision the planner compares.

use super::config::{DYNAMIC_FILE, STATIC_FILE};
use super::names::*;
use crate::crd::Ensemble;
use crate::plan::observed::Set;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

/// The annotation holding a pod's template revision.
pub const REVISION_ANNOTATION: &str = "zooid.io/revision";

/// `set`'s StatefulSet at `replicas` pods running `revision`. Voters and observers run the
/// same template; only their names, labels and server ids differ.
pub fn statefulset(
    ens: &Ensemble,
    names: &Names,
    owner: &OwnerReference,
    set: Set,
    replicas: i32,
    revision: &str,
) -> StatefulSet {
    let spec = &ens.spec;
    let labels = names.labels_of(set);
    // The server id follows from the ordinal (`Set::server_id`); `myid` is written from the
    // pod's name at each start (the same every time), then zooid reads its zoo.cfg and data.
    let first_id = set.server_id(0);
    let start = format!(
        "set -e; mkdir -p {DATA_DIR}; echo $(( ${{HOSTNAME##*-}} + {first_id} )) > {DATA_DIR}/myid; \
         exec zooid --config {CONFIG_DIR}/{STATIC_FILE} --data-dir {DATA_DIR}"
    );
    let affinity = spec
        .pod
        .affinity
        .clone()
        .map(|a| json!(a))
        .unwrap_or_else(|| {
            // Members prefer distinct nodes.
            json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": labels},
                    "topologyKey": "kubernetes.io/hostname"
                }
            }]}})
        });
    let mut pod_spec = json!({
        "terminationGracePeriodSeconds": spec.pod.termination_grace_period_seconds.unwrap_or(30),
        "affinity": affinity,
        "containers": [{
            "name": "zooid",
            "image": spec.image,
            "command": ["/bin/sh", "-c", start],
            "ports": [
                {"name": "client", "containerPort": CLIENT_PORT},
                {"name": "peer", "containerPort": PEER_PORT},
                {"name": "admin", "containerPort": ADMIN_PORT},
            ],
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": ADMIN_PORT},
                "periodSeconds": 2,
                "failureThreshold": 3,
            },
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": ADMIN_PORT},
                "periodSeconds": 10,
                "failureThreshold": 6,
            },
            // The super user, the operator's identity for reconfig and the admin API.
            "env": [{
                "name": "ZOOID_SUPER_DIGEST",
                "valueFrom": {"secretKeyRef": {"name": names.credentials_secret(), "key": "digest"}},
            }],
            "volumeMounts": [
                {"name": "data", "mountPath": DATA_DIR},
                {"name": "config", "mountPath": CONFIG_DIR},
            ],
        }],
        "volumes": [{
            "name": "config",
            "configMap": {
                "name": names.config_map(),
                "items": [
                    {"key": STATIC_FILE, "path": STATIC_FILE},
                    {"key": DYNAMIC_FILE, "path": DYNAMIC_FILE},
                ],
            },
        }],
    });
    if let Some(tls) = &spec.tls {
        for (dir, secret) in [
            ("client", &tls.client_secret),
            ("quorum", &tls.quorum_secret),
        ] {
            let Some(secret) = secret else { continue };
            let volume = format!("tls-{dir}");
            pod_spec["volumes"]
                .as_array_mut()
                .unwrap_or_else(|| unreachable!("the volumes are a list"))
                .push(json!({"name": volume, "secret": {"secretName": secret}}));
            pod_spec["containers"][0]["volumeMounts"]
                .as_array_mut()
                .unwrap_or_else(|| unreachable!("the mounts are a list"))
                .push(json!({"name": volume, "mountPath": format!("{TLS_DIR}/{dir}"), "readOnly": true}));
        }
        if tls.client_secret.is_some() {
            pod_spec["containers"][0]["ports"]
                .as_array_mut()
                .unwrap_or_else(|| unreachable!("the ports are a list"))
                .push(json!({"name": "client-tls", "containerPort": SECURE_CLIENT_PORT}));
        }
    }
    if let Some(p) = &spec.image_pull_policy {
        pod_spec["containers"][0]["imagePullPolicy"] = json!(p);
    }
    if let Some(r) = &spec.pod.resources {
        pod_spec["containers"][0]["resources"] = json!(r);
    }
    if !spec.pod.tolerations.is_empty() {
        pod_spec["tolerations"] = json!(spec.pod.tolerations);
    }
    if !spec.pod.topology_spread_constraints.is_empty() {
        pod_spec["topologySpreadConstraints"] = json!(spec.pod.topology_spread_constraints);
    }
    if !spec.pod.node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(spec.pod.node_selector);
    }
    let mut claim = json!({
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.storage.size}},
        },
    });
    if let Some(class) = &spec.storage.storage_class_name {
        claim["spec"]["storageClassName"] = json!(class);
    }
    let mut template = json!({
        "metadata": {
            "labels": labels,
            "annotations": {REVISION_ANNOTATION: revision},
        },
        "spec": pod_spec,
    });
    if let Some(overrides) = &spec.pod.overrides {
        merge(&mut template, &json!(overrides));
    }
    let value = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": names.statefulset_of(set),
            "namespace": names.namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "serviceName": names.peers_service(),
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            // The operator deletes a removed member's claim itself (`onScaleDown: Delete`),
            // once the member has left the membership and its pod is gone.
            "persistentVolumeClaimRetentionPolicy": {
                "whenScaled": "Retain",
                "whenDeleted": "Retain",
            },
            "selector": {"matchLabels": labels},
            "template": template,
            "volumeClaimTemplates": [claim],
        },
    });
    serde_json::from_value(value).unwrap_or_else(|e| unreachable!("a well-formed StatefulSet: {e}"))
}

/// JSON merge of `over` into `base` (objects merged key by key, everything else replaced):
/// the user's pod overrides, applied last.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ensemble(extra: serde_json::Value) -> Ensemble {
        let mut spec = json!({"image": "zooid:1", "replicas": 3});
        merge(&mut spec, &extra);
        let mut e = Ensemble::new("coord", serde_json::from_value(spec).unwrap());
        e.metadata.namespace = Some("prod".into());
        e.metadata.uid = Some("u-1".into());
        e
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "zooid.io/v1alpha1".into(),
            kind: "Ensemble".into(),
            name: "coord".into(),
            uid: "u-1".into(),
            controller: Some(true),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn members_restart_only_when_the_operator_says() {
        let names = Names::new("coord", "prod");
        let s = statefulset(
            &ensemble(json!({})),
            &names,
            &owner(),
            Set::Voters,
            4,
            "abc",
        );
        let spec = s.spec;
        assert_eq!(spec.replicas, Some(4));
        assert_eq!(
            spec.update_strategy.unwrap().type_.as_deref(),
            Some("OnDelete")
        );
        assert_eq!(spec.service_name.as_deref(), Some("coord-peers"));
        let template = spec.template;
        let annotations = template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[REVISION_ANNOTATION], "abc");
        let container = &template.spec.unwrap().containers[0];
        assert!(container.command.as_ref().unwrap()[2].contains("myid"));
    }

    #[test]
    fn observers_have_a_statefulset_of_their_own_with_their_server_ids() {
        let names = Names::new("coord", "prod");
        let s = statefulset(
            &ensemble(json!({})),
            &names,
            &owner(),
            Set::Observers,
            2,
            "abc",
        );
        assert_eq!(s.metadata.name.as_deref(), Some("coord-observer"));
        let spec = s.spec;
        // A selector of its own, so that it never counts the voters' pods.
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector[COMPONENT_LABEL], OBSERVER_COMPONENT);
        assert_eq!(spec.service_name.as_deref(), Some("coord-peers"));
        let container = &spec.template.spec.unwrap().containers[0];
        assert!(container.command.as_ref().unwrap()[2].contains("+ 101 ))"));
    }

    #[test]
    fn tls_secrets_are_mounted_as_folders() {
        let names = Names::new("coord", "prod");
        let e = ensemble(json!({"tls": {"clientSecret": "c-tls", "quorumSecret": "q-tls"}}));
        let s = statefulset(&e, &names, &owner(), Set::Voters, 3, "abc");
        let pod = s.spec.template.spec.unwrap();
        let volumes: Vec<_> = pod.volumes.unwrap().into_iter().map(|v| v.name).collect();
        assert!(volumes.contains(&"tls-client".to_string()), "{volumes:?}");
        assert!(volumes.contains(&"tls-quorum".to_string()), "{volumes:?}");
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m.mount_path == "/etc/zooid-tls/quorum"));
    }

    #[test]
    fn pod_overrides_are_merged_last() {
        let names = Names::new("coord", "prod");
        let e = ensemble(json!({"pod": {"overrides": {
            "metadata": {"labels": {"team": "infra"}},
            "spec": {"priorityClassName": "critical"}
        }}}));
        let s = statefulset(&e, &names, &owner(), Set::Voters, 3, "abc");
        let template = s.spec.template;
        let labels = template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["team"], "infra");
        assert_eq!(labels["app.kubernetes.io/name"], "zooid");
        assert_eq!(
            template.spec.unwrap().priority_class_name.as_deref(),
            Some("critical")
        );
    }
}
