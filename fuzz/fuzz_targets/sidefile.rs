//! The captured tree's side file (`gvtg-tree.toml`): any text parses or gives an error; an
//! accepted file never declares a path that leaves the tree.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::sidefile(data));
