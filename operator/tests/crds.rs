//! The committed CRD is what the types generate, and says what the API server must enforce.
#![allow(clippy::unwrap_used)]

#[test]
fn crds_folder_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/ensemble.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = zooid_operator::crd::crd_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/ensemble.yaml is stale: run `cargo run -p zooid-operator --bin crdgen > crds/ensemble.yaml`"
    );
}

#[test]
fn the_crd_names_the_group_the_short_name_and_its_rules() {
    let yaml = zooid_operator::crd::crd_yaml().unwrap();
    for want in [
        "group: zooid.io",
        "- ens",
        "x-kubernetes-validations",
        "self >= 1 && self <= 15",
        "storageClassName is immutable",
        "subresources:",
    ] {
        assert!(yaml.contains(want), "the CRD lacks {want:?}");
    }
}

#[test]
fn the_charts_copies_are_the_repositorys() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for (copy, original) in [
        (
            "charts/zooid-operator/crds/ensemble.yaml",
            "crds/ensemble.yaml",
        ),
        (
            "charts/zooid-operator/dashboards/zooid.json",
            "dashboards/zooid.json",
        ),
        (
            "charts/zooid-operator/dashboards/zooid-operator.json",
            "dashboards/zooid-operator.json",
        ),
        (
            "charts/zooid-operator/alerts/alerts.yaml",
            "dashboards/alerts.yaml",
        ),
        (
            "charts/zooid-operator/alerts/operator-alerts.yaml",
            "dashboards/operator-alerts.yaml",
        ),
    ] {
        let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap_or_default();
        assert!(
            read(copy) == read(original),
            "{copy} differs from {original}: copy it over"
        );
    }
}
