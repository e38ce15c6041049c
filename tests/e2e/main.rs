//! flow's end-to-end tests, one crate so the harness compiles and links once: each module
//! runs the real `flow` binary (or the engine in process) against real files, real
//! `redis-server` processes and a pseudo-terminal, and asserts on what a user sees.

mod common;

mod apply_semantics;
mod aws_errors;
mod aws_secrets_steps;
mod cfn_logs_steps;
mod core_steps;
mod corpus;
mod damaged_journals;
mod docker_standin;
mod docs;
mod ec2_steps;
mod envfile_formats;
mod exact_plan;
mod faults;
mod file_safety;
mod generated_passwords;
mod hostile_endpoints;
mod idempotency;
mod interrupt;
mod journal;
mod k8s_stand_in;
mod local_files;
mod output_views;
mod params_asked;
mod plan;
mod plan_reads;
mod playbooks_aws;
mod playbooks_blot;
mod playbooks_cloudradar;
mod playbooks_october;
mod playbooks_prospectflow;
mod playbooks_redis;
mod policy;
mod policy_on_moto;
mod processes;
mod redis_kubernetes;
mod redis_scale;
mod redis_steps;
mod regressions;
mod resume;
mod rollback;
mod run_resources;
mod s3_steps;
mod saved_plans;
mod secret_forms;
mod secret_outputs;
mod secrets;
mod secrets_in_argv;
mod serve;
mod ssh_hostile;
mod ssh_steps;
mod terminal;
mod validate_errors;
