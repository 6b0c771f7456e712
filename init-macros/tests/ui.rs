//! Compile-time behaviour of `#[init_step]`: what compiles (`ui/pass`), and what is refused with
//! which message (`ui/fail`, each with its reviewed `.stderr`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
