//! flow's AWS step types. The SDK is heavy to build, so they live in a crate of their own:
//! the engine and the other families build and test without waiting for it.

pub mod s3_delete;
pub mod s3_get;
pub mod s3_list;
pub mod s3_put;
pub mod secrets_get;
pub mod secrets_put;
pub mod ssm_get;
pub mod ssm_put;
pub mod target;

use flow_engine::Registry;

/// Every AWS step type. Adding one: a file, plus one line here.
pub fn register_all(registry: &mut Registry) {
    registry
        .register(s3_list::S3List)
        .register(s3_put::S3Put)
        .register(s3_get::S3Get)
        .register(s3_delete::S3Delete)
        .register(secrets_get::SecretsGet)
        .register(secrets_put::SecretsPut)
        .register(ssm_get::SsmGet)
        .register(ssm_put::SsmPut);
}
