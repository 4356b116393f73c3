//! Server-side apply of the objects an ensemble is made of, under the operator's field
//! manager: idempotent, and what the operator does not set is left to others.

use super::Error;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::{de::DeserializeOwned, Serialize};

pub const FIELD_MANAGER: &str = "zooid-operator";

/// Applies `obj` (named and namespaced in its metadata).
pub async fn apply<K>(client: &kube::Client, obj: &K) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let meta = obj.meta();
    let (Some(name), Some(ns)) = (meta.name.as_deref(), meta.namespace.as_deref()) else {
        return Err(Error::Ensemble(
            "an object without a name or namespace".into(),
        ));
    };
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await?;
    Ok(())
}
