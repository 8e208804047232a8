//! Built-in isolators, selected by their Mesos names in `--isolation` and
//! driven through the `Isolator` trait of `mesos-plugin-api` like any
//! plugin. Kernel-facing code takes the root of the filesystem it works on
//! (`/sys/fs/cgroup`), so most of it is tested against a fake tree.

mod blkio;
pub mod capabilities;
pub mod cgroups;
pub mod cni;
mod cpu;
pub mod devices;
pub mod disk;
mod docker_volume;
mod memory;
mod namespaces;
mod pids;
pub mod registry;
pub mod seccomp;

pub use blkio::CgroupsBlkio;
pub use capabilities::{LinuxCapabilities, LinuxNnp};
pub use cpu::CgroupsCpu;
pub use disk::DiskDu;
pub use docker_volume::DockerVolume;
pub use memory::CgroupsMem;
pub use namespaces::Namespaces;
pub use pids::CgroupsPids;
pub use registry::{IsolationConfig, build};
pub use seccomp::LinuxSeccomp;
