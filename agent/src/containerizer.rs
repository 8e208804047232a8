//! `--containerizers`: which containerizer runs a container. As in Mesos,
//! the first containerizer in the list that can run the container's
//! `ContainerInfo` takes it: `docker` runs DOCKER containers only, `oci`
//! MESOS containers with an image (command tasks, under an OCI runtime),
//! `mesos` everything but DOCKER.

use mesos_proto::v1::{self, container_info::Type};

/// The containerizers this agent knows.
pub const KNOWN: [&str; 3] = ["mesos", "docker", "oci"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mesos,
    Docker,
    Oci,
}

impl Kind {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "mesos" => Some(Self::Mesos),
            "docker" => Some(Self::Docker),
            "oci" => Some(Self::Oci),
            _ => None,
        }
    }

    fn accepts(self, container: Option<&v1::ContainerInfo>) -> bool {
        let docker = container.is_some_and(|c| c.r#type() == Type::Docker);
        let image = container.is_some_and(|c| {
            c.r#type() == Type::Mesos && c.mesos.as_ref().is_some_and(|m| m.image.is_some())
        });
        match self {
            Self::Docker => docker,
            Self::Oci => image,
            Self::Mesos => !docker,
        }
    }
}

/// The containerizer for `container`, or why none of `enabled` can run it.
pub fn select(enabled: &[String], container: Option<&v1::ContainerInfo>) -> Result<Kind, String> {
    enabled
        .iter()
        .filter_map(|name| Kind::from_name(name))
        .find(|kind| kind.accepts(container))
        .ok_or_else(|| {
            let kind = container.map_or("no", |c| c.r#type().as_str_name());
            format!(
                "None of the enabled containerizers ({}) can run a container with {kind} ContainerInfo",
                enabled.join(",")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: Type) -> v1::ContainerInfo {
        v1::ContainerInfo {
            r#type: kind as i32,
            ..Default::default()
        }
    }

    #[test]
    fn the_first_containerizer_that_accepts_wins() {
        let both = vec!["docker".to_string(), "mesos".to_string()];
        assert_eq!(select(&both, Some(&info(Type::Docker))), Ok(Kind::Docker));
        assert_eq!(select(&both, Some(&info(Type::Mesos))), Ok(Kind::Mesos));
        assert_eq!(select(&both, None), Ok(Kind::Mesos));
        let mesos = vec!["mesos".to_string()];
        let refused = select(&mesos, Some(&info(Type::Docker))).unwrap_err();
        assert!(refused.contains("DOCKER"), "{refused}");
        let docker = vec!["docker".to_string()];
        assert!(select(&docker, None).is_err());

        let oci_first = vec!["oci".to_string(), "mesos".to_string()];
        let mut image = info(Type::Mesos);
        image.mesos = Some(v1::container_info::MesosInfo {
            image: Some(v1::Image::default()),
        });
        assert_eq!(select(&oci_first, Some(&image)), Ok(Kind::Oci));
        assert_eq!(
            select(&oci_first, Some(&info(Type::Mesos))),
            Ok(Kind::Mesos)
        );
        assert_eq!(select(&oci_first, None), Ok(Kind::Mesos));
        let oci = vec!["oci".to_string()];
        assert!(select(&oci, None).is_err());
    }
}
