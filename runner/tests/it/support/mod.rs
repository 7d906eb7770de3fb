//! Helpers shared by the integration test modules.

pub(crate) mod argo_controller;
pub(crate) mod cluster;
pub(crate) mod dataplane;
pub(crate) mod faultproxy;
pub(crate) mod github_openapi;
pub(crate) mod npm;
pub(crate) mod oracle;
pub(crate) mod own_cluster;
pub(crate) mod runner;
