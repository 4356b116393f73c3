//! Prints the operator's CustomResourceDefinitions (`crds/`; CI fails when they drift from the
//! Rust types).

fn main() -> anyhow::Result<()> {
    print!("{}", zooid_operator::crd::crd_yaml()?);
    Ok(())
}
