//! Generates the prost types (with reflection, which the Mesos JSON codec
//! walks) and the tonic service for the internal agent link.

use std::io;

fn main() -> io::Result<()> {
    let protos = [
        "proto/mesos/v1/mesos.proto",
        "proto/mesos/v1/scheduler/scheduler.proto",
        "proto/mesos/v1/executor/executor.proto",
        "proto/mesos/v1/agent/agent.proto",
        "proto/mesos/v1/quota/quota.proto",
        "proto/mesos/v1/master/master.proto",
        "proto/mesos/internal/v1/agent_link.proto",
        "proto/mesos/plugin/v1/isolator.proto",
        "proto/mesos/plugin/v1/allocator.proto",
        "proto/mesos/plugin/v1/volume.proto",
        "proto/mesos/plugin/v1/network.proto",
        "proto/mesos/plugin/v1/rootfs.proto",
        "proto/mesos/plugin/v1/image.proto",
        "proto/mesos/internal/v1/registry.proto",
    ];
    let includes = ["proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }

    let mut config = prost_build::Config::new();
    // Rarely set and large inline: boxed, so every resource and task the
    // master keeps (hundreds of thousands at scale) stays small.
    config.boxed(".mesos.v1.Resource.disk");
    config.boxed(".mesos.v1.Task.container");
    config.boxed(".mesos.v1.Task.discovery");
    config.boxed(".mesos.v1.Task.health_check");
    // A channel slot is as large as the largest message it can hold, and
    // tokio allocates 32 slots per block: unboxed, a launch made every
    // agent link's queue cost ~100 KB before it carried anything.
    config.boxed(".mesos.internal.v1.MasterToAgent.message.run_task");
    config.boxed(".mesos.internal.v1.MasterToAgent.message.run_task_group");
    prost_reflect_build::Builder::new()
        .descriptor_pool("crate::DESCRIPTOR_POOL")
        .configure(&mut config, &protos, &includes)?;
    // The gRPC service only with the `full` feature: without it the
    // crate is messages alone (a plugin built for WASM).
    if std::env::var_os("CARGO_FEATURE_FULL").is_some() {
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .compile_with_config(config, &protos, &includes)
    } else {
        config.compile_protos(&protos, &includes)
    }
}
