//! Every input a fuzz target ever failed on (`testdata/fuzz-regressions/TARGET/*`), replayed
//! through the same target code (`gvtg::fuzzing`): each must now pass the target's properties.

use std::path::Path;

#[test]
fn every_fuzz_regression_input_passes_its_target() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&base).expect("testdata/fuzz-regressions") {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            gvtg::fuzzing::TARGETS.contains(&target.as_str()),
            "{}: no fuzz target named {target}",
            dir.display()
        );
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let data = std::fs::read(&f).unwrap();
            // A panic names the file through this message.
            eprintln!("replaying {}", f.display());
            assert!(gvtg::fuzzing::run(&target, &data));
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs found under {}",
        base.display()
    );
}

#[test]
fn every_target_is_built_by_the_fuzz_crate() {
    let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    for t in gvtg::fuzzing::TARGETS {
        assert!(
            toml.contains(&format!("name = \"{t}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {t}"
        );
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/fuzz_targets/{t}.rs"));
        let text = std::fs::read_to_string(&src).expect("fuzz target source");
        assert!(
            text.contains(&format!("gvtg::fuzzing::{t}(")),
            "{}",
            src.display()
        );
    }
}
