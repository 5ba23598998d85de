use super::*;

/// An error with an optional source, for building chains.
#[derive(Debug)]
struct Link(&'static str, Option<Box<Link>>);

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Link {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|link| link as _)
    }
}

fn link(text: &'static str, source: Option<Link>) -> Link {
    Link(text, source.map(Box::new))
}

#[test]
fn chains_join_sources_once_each() {
    let root = link("Out of memory", None);
    // wgpu's style: a description that spells out its source on indented lines.
    let described = link(
        "Validation Error\n\nCaused by:\n  In a buffer\n    Out of memory\n",
        Some(root),
    );
    let top = link("the GPU rejected a buffer", Some(described));
    assert_eq!(
        error_chain(&top),
        "the GPU rejected a buffer: Validation Error Caused by: In a buffer Out of memory"
    );
    let plain = link("cannot write x.npy", Some(link("disk full", None)));
    assert_eq!(error_chain(&plain), "cannot write x.npy: disk full");
    let empty = link("device lost", Some(link(" \n", None)));
    assert_eq!(error_chain(&empty), "device lost");
}
