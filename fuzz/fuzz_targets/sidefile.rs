//! The captured tree's side file (`gvtg-tree.toml`): any text parses or gives an error; an
//! accepted file never declares a path that leaves the tree.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = gvtg::host::sidefile::SideFile::parse(&text) {
        for (path, _) in s.nodes_under("") {
            assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".."), "{path:?}");
        }
        if let Some(k) = &s.kernel_log {
            assert!(!k.starts_with('/') && !k.split('/').any(|c| c == ".."), "{k:?}");
        }
        for name in s.children("") {
            assert!(!name.is_empty() && !name.contains('/'));
            let _ = s.is_dir(&name);
        }
    }
});
