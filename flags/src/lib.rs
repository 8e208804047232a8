//! Mesos's flag conventions for our daemons and tools.
//!
//! - `--name=value`, or the environment variable `MESOS_NAME` (the part
//!   after the prefix is lower-cased); the command line wins.
//! - Booleans: `--name`, `--no-name`, `--name=true|false`.
//! - `--name=file:///path` reads the value from a file.
//! - `--help` lists every flag; an unknown flag or a bad value is an error
//!   naming the flag.
//!
//! Flags are declared with [`flags!`], which generates the struct and its
//! loader from one list, so the help text, the defaults and `/flags`
//! cannot drift apart.

mod load;
mod values;

pub use load::{FlagSpec, Loaded, check_default, collect_raw, render_help, resolve};
pub use values::{Bytes, Duration, FlagValue, Hooks};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    #[error("Failed to load unknown flag '{0}'")]
    Unknown(String),
    #[error("Failed to load flag '{name}': invalid value '{value}': {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("Failed to load flag '{0}': missing value")]
    MissingValue(String),
    #[error("Flag '{0}' is required, but it was not provided")]
    Required(String),
    #[error("Flag '{0}' was given more than once")]
    Duplicate(String),
    #[error("Failed to load non-boolean flag '{0}' via '--no-{0}'")]
    NegatedNonBool(String),
    #[error("Unexpected argument '{0}' (flags look like --name=value)")]
    Positional(String),
    #[error("Failed to load flag '{name}': cannot read '{path}': {reason}")]
    File {
        name: String,
        path: String,
        reason: String,
    },
}

/// Declares a flags struct. Each field is a flag named after it; its doc
/// comment is the help text; `= "default"` gives a default written as a
/// user would write it. `Option<T>` fields without a default may be absent;
/// any other field without a default is required.
#[macro_export]
macro_rules! flags {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty $(= $default:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        // A program uses only some of the generated API (a tool may never
        // serve `/flags`), which is no reason to warn.
        #[allow(dead_code)]
        impl $name {
            /// Every flag, in declaration order.
            pub const SPECS: &'static [$crate::FlagSpec] = &[
                $(
                    $crate::FlagSpec {
                        name: stringify!($field),
                        help: concat!($($doc, "\n",)* ""),
                        default: $crate::__flag_default!($($default)?),
                        is_bool: <$ty as $crate::FlagValue>::IS_BOOL,
                    },
                )*
            ];

            /// Loads from the process's arguments and `MESOS_*` environment.
            pub fn load() -> ::std::result::Result<$crate::Loaded<Self>, $crate::FlagsError> {
                let mut args = ::std::env::args();
                let program = args.next().unwrap_or_default();
                let program = program.rsplit('/').next().unwrap_or_default().to_string();
                Self::load_named(&program, args, ::std::env::vars())
            }

            /// Loads from the given arguments (without the program name)
            /// and environment.
            pub fn load_from<I, E>(
                args: I,
                env: E,
            ) -> ::std::result::Result<$crate::Loaded<Self>, $crate::FlagsError>
            where
                I: IntoIterator<Item = String>,
                E: IntoIterator<Item = (String, String)>,
            {
                Self::load_named(stringify!($name), args, env)
            }

            fn load_named<I, E>(
                program: &str,
                args: I,
                env: E,
            ) -> ::std::result::Result<$crate::Loaded<Self>, $crate::FlagsError>
            where
                I: IntoIterator<Item = String>,
                E: IntoIterator<Item = (String, String)>,
            {
                let Some(raw) = $crate::collect_raw(Self::SPECS, args, env)? else {
                    return Ok($crate::Loaded::Help(Self::help(program)));
                };
                Ok($crate::Loaded::Flags(Self {
                    $(
                        $field: $crate::resolve::<$ty>(
                            &raw,
                            stringify!($field),
                            $crate::__flag_default!($($default)?),
                        )?,
                    )*
                }))
            }

            /// Parses every default with the parser user input goes
            /// through, so a unit test can catch a malformed default
            /// before a user ever starts the program.
            pub fn check_defaults() -> ::std::result::Result<(), $crate::FlagsError> {
                $(
                    $crate::check_default::<$ty>(
                        stringify!($field),
                        $crate::__flag_default!($($default)?),
                    )?;
                )*
                Ok(())
            }

            /// The `--help` text.
            pub fn help(program: &str) -> String {
                $crate::render_help(program, Self::SPECS)
            }

            /// Every flag with its effective value, for `/flags`.
            pub fn to_pairs(&self) -> Vec<(String, String)> {
                let mut pairs = Vec::new();
                $(
                    if let Some(value) = $crate::FlagValue::render_present(&self.$field) {
                        pairs.push((stringify!($field).to_string(), value));
                    }
                )*
                pairs
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __flag_default {
    () => {
        None
    };
    ($default:literal) => {
        Some($default)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    flags! {
        /// Test flags.
        pub struct TestFlags {
            /// Port to listen on.
            port: u16 = "5050",
            /// Working directory.
            work_dir: Option<PathBuf>,
            /// Master address.
            master: String,
            /// A switch.
            verbose: bool = "false",
            /// A period.
            interval: Duration = "1secs",
            /// A size.
            cache: Bytes = "2GB",
        }
    }

    fn load(args: &[&str], env: &[(&str, &str)]) -> Result<TestFlags, FlagsError> {
        let args = args.iter().map(|s| s.to_string());
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match TestFlags::load_from(args, env)? {
            Loaded::Flags(f) => Ok(f),
            Loaded::Help(_) => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults_env_and_command_line() {
        let f = load(&["--master=m:5050"], &[]).unwrap();
        assert_eq!(f.port, 5050);
        assert_eq!(f.work_dir, None);
        assert!(!f.verbose);
        assert_eq!(f.interval.0, std::time::Duration::from_secs(1));
        assert_eq!(f.cache.0, 2 << 30);

        let f = load(
            &["--port=6000"],
            &[("MESOS_PORT", "7000"), ("MESOS_master", "x")],
        )
        .unwrap();
        assert_eq!(f.port, 6000, "command line wins");
        assert_eq!(f.master, "x", "env var suffix is lower-cased");
        let f = load(&[], &[("MESOS_MASTER", "y"), ("MESOS_UNRELATED", "z")]).unwrap();
        assert_eq!(f.master, "y");
    }

    #[test]
    fn booleans() {
        assert!(load(&["--master=m", "--verbose"], &[]).unwrap().verbose);
        assert!(
            load(&["--master=m", "--verbose=true"], &[])
                .unwrap()
                .verbose
        );
        assert!(
            !load(
                &["--master=m", "--no-verbose"],
                &[("MESOS_VERBOSE", "true")]
            )
            .unwrap()
            .verbose
        );
    }

    #[test]
    fn file_values() {
        let dir = std::env::temp_dir().join(format!("flags-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("master");
        std::fs::write(&file, "10.0.0.1:5050\n").unwrap();
        let f = load(&[&format!("--master=file://{}", file.display())], &[]).unwrap();
        assert_eq!(f.master, "10.0.0.1:5050");
        let err = load(&["--master=file:///nonexistent/x"], &[]).unwrap_err();
        assert!(matches!(err, FlagsError::File { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_flag() {
        assert_eq!(
            load(&["--master=m", "--prot=1"], &[]).unwrap_err(),
            FlagsError::Unknown("prot".into())
        );
        let err = load(&["--master=m", "--port=abc"], &[]).unwrap_err();
        assert!(err.to_string().contains("'port'"), "{err}");
        assert_eq!(
            load(&[], &[]).unwrap_err(),
            FlagsError::Required("master".into())
        );
        assert_eq!(
            load(&["--master"], &[]).unwrap_err(),
            FlagsError::MissingValue("master".into())
        );
        assert_eq!(
            load(&["master=m"], &[]).unwrap_err(),
            FlagsError::Positional("master=m".into())
        );
        assert_eq!(
            load(&["--master=a", "--master=b"], &[]).unwrap_err(),
            FlagsError::Duplicate("master".into())
        );
        assert!(load(&["--master=m", "--interval=5parsecs"], &[]).is_err());
    }

    #[test]
    fn error_messages_read_like_mesos() {
        assert_eq!(
            load(&["--master=m", "--port=abc"], &[])
                .unwrap_err()
                .to_string(),
            "Failed to load flag 'port': invalid value 'abc': \
             expected an integer between 0 and 65535"
        );
        assert_eq!(
            load(&["--master=m", "--prot=1"], &[])
                .unwrap_err()
                .to_string(),
            "Failed to load unknown flag 'prot'"
        );
        assert_eq!(
            load(&["--master=m", "--no-port"], &[]).unwrap_err(),
            FlagsError::NegatedNonBool("port".into())
        );
        assert_eq!(
            load(&["--master=m", "--verbose=maybe"], &[]).unwrap_err(),
            FlagsError::Invalid {
                name: "verbose".into(),
                value: "maybe".into(),
                reason: "expected 'true' or 'false'".into(),
            }
        );
        // A malformed value in the environment is as fatal as on the
        // command line: it names a flag we know.
        assert!(matches!(
            load(&["--master=m"], &[("MESOS_PORT", "x")]),
            Err(FlagsError::Invalid { .. })
        ));
    }

    #[test]
    fn file_values_relative_and_from_the_environment() {
        let dir = std::env::temp_dir().join(format!("flags-rel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("port"), "6060\n").unwrap();
        // `file://relative` is relative to the working directory; tests must
        // not change it, so go up from it to the absolute file instead.
        let cwd = std::env::current_dir().unwrap();
        let ups = cwd.components().count().saturating_sub(1);
        let relative = format!(
            "{}{}",
            "../".repeat(ups),
            dir.join("port")
                .display()
                .to_string()
                .trim_start_matches('/')
        );
        let f = load(&["--master=m", &format!("--port=file://{relative}")], &[]).unwrap();
        assert_eq!(f.port, 6060);
        let file = format!("file://{}", dir.join("port").display());
        let f = load(&[], &[("MESOS_MASTER", "m"), ("MESOS_PORT", file.as_str())]).unwrap();
        assert_eq!(f.port, 6060);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_are_checked_by_the_user_parser() {
        TestFlags::check_defaults().unwrap();
        flags! {
            struct BadDefault {
                /// A period with a typo in its default.
                period: Duration = "5seconds",
            }
        }
        let err = BadDefault::check_defaults().unwrap_err();
        assert!(err.to_string().contains("'period'"), "{err}");
        assert!(BadDefault::load_from(Vec::new(), Vec::new()).is_err());
        let ok = BadDefault::load_from(["--period=5secs".to_string()], Vec::new()).unwrap();
        let Loaded::Flags(ok) = ok else {
            panic!("expected flags");
        };
        assert_eq!(ok.period.to_string(), "5secs");
    }

    #[test]
    fn multi_line_docs_become_one_help_paragraph() {
        flags! {
            struct Wordy {
                /// First line
                /// and second line.
                x: Option<u32>,
            }
        }
        let Loaded::Flags(w) = Wordy::load_from(Vec::new(), Vec::new()).unwrap() else {
            panic!("expected flags");
        };
        assert_eq!(w.x, None);
        let help = Wordy::help("wordy");
        assert!(help.contains("First line and second line."), "{help}");
        assert!(help.starts_with("Usage: wordy"), "{help}");
    }

    #[test]
    fn help_lists_every_flag_and_pairs_render_values() {
        let args = ["--help".to_string()];
        let Loaded::Help(help) = TestFlags::load_from(args, Vec::new()).unwrap() else {
            panic!("expected help");
        };
        for flag in [
            "--port",
            "--work_dir",
            "--master",
            "--verbose",
            "Port to listen on",
            "5050",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
        let f = load(&["--master=m"], &[]).unwrap();
        let pairs = f.to_pairs();
        assert!(pairs.contains(&("port".into(), "5050".into())));
        assert!(pairs.contains(&("interval".into(), "1secs".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "work_dir"));
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["port", "master", "verbose", "interval", "cache"],
            "declaration order"
        );
        assert!(pairs.contains(&("cache".into(), "2GB".into())));
    }
}
