//! Engine overhead per step, in process: load + validate, plan, and apply of generated
//! playbooks of 100, 1 000 and 10 000 `log`/`assert` steps, as a chain (each step reads the
//! one before) and as a wide fan-out (every step reads the first). `cargo bench` prints the
//! time per playbook; divide by the step count for the cost per step (bench/README.md).

use flow_engine::event::Mode;
use flow_engine::run::Runner;
use std::sync::Arc;

fn main() {
    divan::main();
}

const SIZES: &[usize] = &[100, 1_000, 10_000];

#[derive(Clone, Copy, Debug)]
enum Shape {
    Chain,
    FanOut,
}

/// A playbook of `n` steps alternating `log` and `assert`, each templated on an earlier one.
fn playbook(n: usize, shape: Shape) -> String {
    let mut text = String::from(
        "flow: 1\nparams:\n  who: { type: string, default: bench }\nsteps:\n  s0: { type: log, with: { message: \"start {{ params.who }}\" } }\n",
    );
    for i in 1..n {
        let earlier = match shape {
            Shape::Chain => i - 1,
            Shape::FanOut => 0,
        };
        let needs = match shape {
            Shape::Chain => String::new(),
            Shape::FanOut => "needs: [s0], ".to_string(),
        };
        if i % 2 == 1 {
            text.push_str(&format!("  s{i}: {{ type: log, {needs}with: {{ message: \"after {{{{ steps.s{earlier}.status }}}}\" }} }}\n"));
        } else {
            text.push_str(&format!("  s{i}: {{ type: assert, {needs}with: {{ that: \"steps.s{earlier}.status == 'succeeded'\" }} }}\n"));
        }
    }
    text
}

fn checked(text: &str) -> flow_engine::Checked {
    flow_engine::headless::checked("bench.yaml", text, &flow_steps::registry()).expect("checks")
}

fn runner(text: &str, mode: Mode) -> Arc<Runner> {
    flow_engine::headless::runner(checked(text), mode).expect("params")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[divan::bench(args = SIZES)]
fn validate_chain(bencher: divan::Bencher, n: usize) {
    let text = playbook(n, Shape::Chain);
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .bench(|| checked(divan::black_box(&text)));
}

#[divan::bench(args = SIZES)]
fn plan_chain(bencher: divan::Bencher, n: usize) {
    let text = playbook(n, Shape::Chain);
    let rt = runtime();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .with_inputs(|| runner(&text, Mode::Plan))
        .bench_values(|runner| rt.block_on(runner.plan()).status);
}

#[divan::bench(args = SIZES)]
fn apply_chain(bencher: divan::Bencher, n: usize) {
    let text = playbook(n, Shape::Chain);
    let rt = runtime();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .with_inputs(|| runner(&text, Mode::Apply))
        .bench_values(|runner| rt.block_on(runner.apply()).status);
}

#[divan::bench(args = SIZES)]
fn apply_fan_out(bencher: divan::Bencher, n: usize) {
    let text = playbook(n, Shape::FanOut);
    let rt = runtime();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .with_inputs(|| runner(&text, Mode::Apply))
        .bench_values(|runner| rt.block_on(runner.apply()).status);
}
