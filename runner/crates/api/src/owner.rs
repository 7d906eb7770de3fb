//! The object an action is performed for, and the owner reference it puts on what it creates.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::{API_VERSION, Experiment, Rollout};

/// The object an action is performed for: it owns what the action creates.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Rollout(&'a Rollout),
    Experiment(&'a Experiment),
}

impl Owner<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Owner::Rollout(_) => "Rollout",
            Owner::Experiment(_) => "Experiment",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Owner::Rollout(rollout) => &rollout.metadata,
            Owner::Experiment(experiment) => &experiment.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or("default")
    }

    /// The controller owner reference to put on objects created for this owner.
    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: API_VERSION.into(),
            kind: self.kind().into(),
            name: self.name().to_string(),
            uid: self.metadata().uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}
