//! flow's AWS step types. The SDK is heavy to build, so they live in a crate of their own:
//! the engine and the other families build and test without waiting for it.

pub mod cfn_deploy;
pub mod cfn_outputs;
pub mod cfn_permissions;
pub mod cfn_stack;
pub mod ec2_attach_groups;
pub mod ec2_find;
pub mod ec2_instances;
pub mod ec2_run;
pub mod ec2_stop;
pub mod ec2_terminate;
pub mod ec2_wait;
pub mod iam;
pub mod logs_search;
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
        .register(ssm_put::SsmPut)
        .register(ec2_run::Ec2Run)
        .register(ec2_attach_groups::Ec2AttachSecurityGroups)
        .register(ec2_find::Ec2Find)
        .register(ec2_wait::Ec2Wait)
        .register(ec2_stop::Ec2Stop)
        .register(ec2_terminate::Ec2Terminate)
        .register(cfn_deploy::CfnDeploy)
        .register(cfn_outputs::CfnOutputs)
        .register(logs_search::LogsSearch);
}
