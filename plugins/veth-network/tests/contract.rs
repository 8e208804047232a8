//! The contract suite against the network's built-in and dylib forms:
//! both give the container the same interfaces and addresses, refuse the
//! same bad requests, and leave its namespace empty when detached.
//! Namespaces and veth pairs need root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesos_plugin_api::contract::{self, Limits};
use veth_network::VethNetwork;

/// Root, or a printed reason to skip, which fails under `CI=true`.
fn as_root() -> bool {
    contract::root_or_skip("the veth network (namespaces)").unwrap()
}

#[test]
fn both_forms_attach_and_detach_alike() {
    if !as_root() {
        return;
    }
    // A /24 of its own, so as not to meet the end-to-end test's routes.
    let seen = contract::compare_network::<VethNetwork>(
        &contract::artifact("veth_network"),
        b"10.198.7\n10.198.7.53\n",
        Limits::default(),
    )
    .unwrap();
    let dns =
        r#"Some(Dns { nameservers: ["10.198.7.53"], domain: None, search: [], options: [] })"#;
    assert_eq!(
        seen[0],
        format!(r#"Ok(Attached {{ ip_addresses: ["10.198.7.2/24"], dns: {dns} }})"#),
        "{seen:#?}"
    );
    assert_eq!(
        seen[1],
        format!(r#"Ok(Attached {{ ip_addresses: ["10.198.7.3/24"], dns: {dns} }})"#),
        "{seen:#?}"
    );
    assert_eq!(
        seen[2], "addresses: eth0 10.198.7.2/24, eth1 10.198.7.3/24",
        "{seen:#?}"
    );
    assert!(
        seen[3].contains("eth0 of container c1 is attached already"),
        "{seen:#?}"
    );
    assert!(
        seen[4].contains("interface name 'bad/name' is not one this plugin can pair"),
        "{seen:#?}"
    );
    assert!(seen[5].starts_with("Err("), "{seen:#?}");
    assert!(seen[5].contains(".missing"), "{seen:#?}");
    assert_eq!(seen[6..8], ["Ok(())", "Ok(())"], "{seen:#?}");
    assert_eq!(seen[8], "addresses: ", "nothing left behind: {seen:#?}");
    assert_eq!(seen[9], "Ok(())", "a second detach is a no-op: {seen:#?}");
}
