//! A report archive (`gvtg doctor --from FILE`): any bytes unpack or give an error, and nothing
//! is ever written outside the extraction directory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("r.tar.gz");
    std::fs::write(&file, data).expect("write input");
    let dest = tmp.path().join("out");
    std::fs::create_dir(&dest).expect("mkdir");
    let res = gvtg::report::archive::unpack(&file, &dest);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["out", "r.tar.gz"], "unpack wrote beside its destination");
    if let Ok(root) = res {
        let canon = root.canonicalize().expect("root exists");
        assert!(canon.starts_with(dest.canonicalize().expect("dest")));
        // The replay reads the tree; it must not panic on whatever the archive held.
        if let Ok(host) = gvtg::host::root::HostRoot::at(&root) {
            let _ = host.read("proc/cmdline");
            let _ = host.read_dir("sys/class/mdev_bus");
            let _ = host.kernel_log();
        }
    }
});
