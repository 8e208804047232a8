//! The Docker Engine side of the docker containerizer: how a Mesos task
//! with a DOCKER `ContainerInfo` becomes an Engine container (`spec`), and
//! the Engine calls made for it (`engine`), through bollard over the
//! Engine's unix socket.

pub mod engine;
pub mod spec;

pub use engine::{Engine, EngineError, MesosContainer, NAME_PREFIX, container_name};
pub use spec::{RunSpec, SpecError, container_config, image};
