//! `POST /api/v1`: the agent operator API, with Mesos's status codes.
//! Synchronous calls answer one `agent::Response`; the nested container
//! session and output attachment answer a RecordIO stream of `ProcessIO`
//! (`Accept: application/recordio`, records in `Message-Accept`'s format),
//! and input attachment reads one (`Content-Type: application/recordio`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use mesos_proto::codec::{self, Format};
use mesos_proto::recordio;
use mesos_proto::stream::RecordStream;
use mesos_proto::v1::agent::{call, process_io, response};
use mesos_proto::v1::{self, agent::Call, agent::ProcessIo, agent::Response as Reply};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::App;
use crate::agent::Command;
use crate::error::ApiError;
use crate::files::FilesError;
use crate::images::PruneError;
use crate::monitor::{Units, sessions_usage};
use crate::nested::{self, NestedError, Stream};

/// Calls are small; only attached input streams, and it is not buffered.
const MAX_CALL_BYTES: usize = 4 << 20;
const RECORDIO: &str = "application/recordio";
const MESSAGE_CONTENT_TYPE: &str = "message-content-type";
const MESSAGE_ACCEPT: &str = "message-accept";
/// How often attached output looks for more in the sandbox files.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);

pub async fn handle(State(app): State<App>, request: Request) -> Response {
    match dispatch(app, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(app: App, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if parts.method == Method::POST && content_type.as_deref() == Some(RECORDIO) {
        return attach_input(app, &parts.headers, body).await;
    }
    let bytes = axum::body::to_bytes(body, MAX_CALL_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Failed to read the request body: {e}"),
            )
        })?;
    let (call, _) = mesos_http::read_call::<Call>(&parts.method, &parts.headers, &bytes)?;
    let kind = call.r#type();
    if matches!(
        kind,
        call::Type::LaunchNestedContainerSession | call::Type::AttachContainerOutput
    ) {
        let format = streaming_format(&parts.headers)?;
        return match kind {
            call::Type::LaunchNestedContainerSession => launch_session(app, call, format).await,
            _ => attach_output(app, call, format),
        };
    }
    let format = mesos_http::stream_format(&parts.headers)?;
    let reply = answer(&app, call).await?;
    Ok(match reply {
        Some(reply) => (
            [(header::CONTENT_TYPE, format.media_type())],
            codec::encode(format, &reply),
        )
            .into_response(),
        None => (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response(),
    })
}

fn reply(kind: response::Type) -> Reply {
    Reply {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn missing(what: &str) -> ApiError {
    ApiError::bad_request(format!("Expecting '{what}' to be present"))
}

fn nested_error(e: NestedError) -> ApiError {
    let status = match e {
        NestedError::NotFound(_) => StatusCode::NOT_FOUND,
        NestedError::Exists(_) | NestedError::Running(_) | NestedError::InputAttached(_) => {
            StatusCode::CONFLICT
        }
        NestedError::Invalid(_) => StatusCode::BAD_REQUEST,
        NestedError::Launch { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn files_error(e: FilesError) -> ApiError {
    ApiError::new(e.status(), e.to_string())
}

/// The synchronous calls; `None` answers 200 with no body.
async fn answer(app: &App, call: Call) -> Result<Option<Reply>, ApiError> {
    use call::Type as T;
    use response::Type as R;
    let kind = call.r#type();
    Ok(Some(match kind {
        T::GetHealth => Reply {
            get_health: Some(response::GetHealth { healthy: true }),
            ..reply(R::GetHealth)
        },
        T::GetFlags => Reply {
            get_flags: Some(response::GetFlags {
                flags: mesos_proto::operator::flags(&app.flags),
            }),
            ..reply(R::GetFlags)
        },
        T::GetVersion => Reply {
            get_version: Some(response::GetVersion {
                version_info: v1::VersionInfo {
                    version: mesos_proto::MESOS_VERSION.into(),
                    ..Default::default()
                },
            }),
            ..reply(R::GetVersion)
        },
        T::GetMetrics => {
            let snapshot = app
                .handle
                .request(|reply| Command::Metrics { reply })
                .await?;
            let metrics = mesos_proto::operator::metrics(&snapshot);
            Reply {
                get_metrics: Some(response::GetMetrics { metrics }),
                ..reply(R::GetMetrics)
            }
        }
        // glog verbosity: the agent logs at its base level.
        T::GetLoggingLevel => Reply {
            get_logging_level: Some(response::GetLoggingLevel { level: 0 }),
            ..reply(R::GetLoggingLevel)
        },
        T::ListFiles => {
            let path = call.list_files.ok_or_else(|| missing("list_files"))?.path;
            let files = app.files.clone();
            let entries = blocking(move || files.browse(&path))
                .await?
                .map_err(files_error)?;
            let file_infos = entries
                .into_iter()
                .map(|e| v1::FileInfo {
                    path: e.path,
                    nlink: i32::try_from(e.nlink).ok(),
                    size: Some(e.size),
                    mtime: Some(v1::TimeInfo {
                        nanoseconds: e.mtime.saturating_mul(1_000_000_000),
                    }),
                    mode: Some(e.raw_mode),
                    uid: Some(e.uid),
                    gid: Some(e.gid),
                })
                .collect();
            Reply {
                list_files: Some(response::ListFiles { file_infos }),
                ..reply(R::ListFiles)
            }
        }
        T::ReadFile => {
            let read = call.read_file.ok_or_else(|| missing("read_file"))?;
            let files = app.files.clone();
            let offset = i64::try_from(read.offset).unwrap_or(i64::MAX);
            let length = read.length.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
            let chunk = blocking(move || files.read(&read.path, Some(offset), length))
                .await?
                .map_err(files_error)?;
            Reply {
                read_file: Some(response::ReadFile {
                    size: chunk.size,
                    data: chunk.data,
                }),
                ..reply(R::ReadFile)
            }
        }
        T::GetState | T::GetFrameworks | T::GetExecutors | T::GetTasks | T::GetAgent => {
            let (state, agent_info) = app
                .handle
                .request(|reply| Command::OperatorState { reply })
                .await?;
            match call.r#type() {
                T::GetFrameworks => Reply {
                    get_frameworks: state.get_frameworks,
                    ..reply(R::GetFrameworks)
                },
                T::GetExecutors => Reply {
                    get_executors: state.get_executors,
                    ..reply(R::GetExecutors)
                },
                T::GetTasks => Reply {
                    get_tasks: state.get_tasks,
                    ..reply(R::GetTasks)
                },
                T::GetAgent => Reply {
                    get_agent: Some(response::GetAgent {
                        agent_info: Some(agent_info),
                    }),
                    ..reply(R::GetAgent)
                },
                _ => Reply {
                    get_state: Some(state),
                    ..reply(R::GetState)
                },
            }
        }
        T::GetContainers => {
            let show_nested = call
                .get_containers
                .and_then(|g| g.show_nested)
                .unwrap_or(false);
            Reply {
                get_containers: Some(containers(app, show_nested).await?),
                ..reply(R::GetContainers)
            }
        }
        T::LaunchNestedContainer | T::LaunchContainer => {
            let (container_id, command) = match call.r#type() {
                T::LaunchContainer => {
                    let l = call
                        .launch_container
                        .ok_or_else(|| missing("launch_container"))?;
                    (l.container_id, l.command)
                }
                _ => {
                    let l = call
                        .launch_nested_container
                        .ok_or_else(|| missing("launch_nested_container"))?;
                    (l.container_id, l.command)
                }
            };
            let spec = nested_spec(app, container_id, command, false).await?;
            app.nested.launch(spec).await.map_err(nested_error)?;
            return Ok(None);
        }
        T::WaitNestedContainer | T::WaitContainer => {
            let id = match call.r#type() {
                T::WaitContainer => call.wait_container.map(|w| w.container_id),
                _ => call.wait_nested_container.map(|w| w.container_id),
            }
            .ok_or_else(|| missing("container_id"))?;
            let status = app.nested.wait(&id.value).await.map_err(nested_error)?;
            match kind {
                T::WaitContainer => Reply {
                    wait_container: Some(response::WaitContainer {
                        exit_status: Some(status),
                        ..Default::default()
                    }),
                    ..reply(R::WaitContainer)
                },
                _ => Reply {
                    wait_nested_container: Some(response::WaitNestedContainer {
                        exit_status: Some(status),
                        ..Default::default()
                    }),
                    ..reply(R::WaitNestedContainer)
                },
            }
        }
        T::KillNestedContainer | T::KillContainer => {
            let (id, signal) = match call.r#type() {
                T::KillContainer => call.kill_container.map(|k| (k.container_id, k.signal)),
                _ => call
                    .kill_nested_container
                    .map(|k| (k.container_id, k.signal)),
            }
            .ok_or_else(|| missing("container_id"))?;
            app.nested.kill(&id.value, signal).map_err(nested_error)?;
            return Ok(None);
        }
        T::RemoveNestedContainer | T::RemoveContainer => {
            let id = match call.r#type() {
                T::RemoveContainer => call.remove_container.map(|r| r.container_id),
                _ => call.remove_nested_container.map(|r| r.container_id),
            }
            .ok_or_else(|| missing("container_id"))?;
            app.nested.remove(&id.value).await.map_err(nested_error)?;
            return Ok(None);
        }
        T::PruneImages => {
            let excluded = call
                .prune_images
                .map(|p| p.excluded_images)
                .unwrap_or_default();
            // Without image providers there is no cache: nothing to do.
            if let Some(images) = app.images.clone() {
                blocking(move || images.prune(&excluded))
                    .await?
                    .map_err(|e| match e {
                        PruneError::Image(_) => ApiError::bad_request(e.to_string()),
                        PruneError::Store(_) => {
                            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        }
                    })?;
            }
            return Ok(None);
        }
        T::Unknown => {
            return Err(ApiError::not_implemented("Received 'UNKNOWN' call"));
        }
        other => {
            return Err(ApiError::not_implemented(format!(
                "'{}' is not supported by this agent",
                other.as_str_name()
            )));
        }
    }))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn containers(app: &App, show_nested: bool) -> Result<response::GetContainers, ApiError> {
    let views = app
        .handle
        .request(|reply| Command::Containers { reply })
        .await?;
    let nested = if show_nested {
        app.nested.list()
    } else {
        Vec::new()
    };
    let proc_root = app.proc_root.clone();
    let sessions: Vec<u32> = views
        .iter()
        .filter_map(|c| c.pid)
        .chain(nested.iter().map(|n| n.2))
        .collect();
    let usage = blocking(move || sessions_usage(&proc_root, &sessions, Units::of_host())).await?;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let statistics = |pid: Option<u32>, cpus_limit, mem_limit_bytes| {
        pid.and_then(|pid| usage.get(&pid))
            .map(|u| v1::ResourceStatistics {
                timestamp,
                processes: Some(u.processes),
                threads: Some(u.threads),
                cpus_user_time_secs: Some(u.cpus_user_time_secs),
                cpus_system_time_secs: Some(u.cpus_system_time_secs),
                cpus_limit,
                mem_rss_bytes: Some(u.mem_rss_bytes),
                mem_limit_bytes,
                ..Default::default()
            })
    };
    let mut containers: Vec<_> = views
        .iter()
        .map(|c| {
            let container_id = v1::ContainerId {
                value: c.container_id.clone(),
                parent: None,
            };
            response::get_containers::Container {
                framework_id: Some(v1::FrameworkId {
                    value: c.framework_id.clone(),
                }),
                executor_id: Some(v1::ExecutorId {
                    value: c.executor_id.clone(),
                }),
                executor_name: Some(c.executor_name.clone()),
                container_status: Some(v1::ContainerStatus {
                    container_id: Some(container_id.clone()),
                    executor_pid: c.pid,
                    ..Default::default()
                }),
                resource_statistics: statistics(c.pid, c.cpus_limit, c.mem_limit_bytes),
                container_id,
            }
        })
        .collect();
    for (id, parent, pid, exited) in nested {
        let container_id = v1::ContainerId {
            value: id,
            parent: Some(Box::new(v1::ContainerId {
                value: parent,
                parent: None,
            })),
        };
        containers.push(response::get_containers::Container {
            container_status: Some(v1::ContainerStatus {
                container_id: Some(container_id.clone()),
                executor_pid: (!exited).then_some(pid),
                ..Default::default()
            }),
            resource_statistics: if exited {
                None
            } else {
                statistics(Some(pid), None, None)
            },
            container_id,
            ..Default::default()
        });
    }
    Ok(response::GetContainers { containers })
}

/// Where a nested container goes: its parent must be a live executor's
/// container or another nested container.
async fn nested_spec(
    app: &App,
    container_id: v1::ContainerId,
    command: Option<v1::CommandInfo>,
    session: bool,
) -> Result<nested::Spec, ApiError> {
    let parent = container_id
        .parent
        .as_ref()
        .map(|p| p.value.clone())
        .ok_or_else(|| {
            ApiError::not_implemented(
                "Standalone containers are not supported; give 'container_id.parent'",
            )
        })?;
    let command = command.ok_or_else(|| missing("command"))?;
    let views = app
        .handle
        .request(|reply| Command::Containers { reply })
        .await?;
    let parent_sandbox = views
        .into_iter()
        .find(|c| c.container_id == parent)
        .map(|c| c.sandbox)
        .or_else(|| app.nested.sandbox(&parent))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Parent container {parent} cannot be found"),
            )
        })?;
    Ok(nested::Spec {
        id: container_id.value,
        parent,
        parent_sandbox,
        command,
        session,
    })
}

/// The record format of a streamed response: `Accept` must allow RecordIO,
/// `Message-Accept` picks JSON or protobuf.
fn streaming_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    if !accept
        .as_deref()
        .is_some_and(|a| a.contains(RECORDIO) || a.contains("*/*"))
    {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("Expecting 'Accept' to allow '{RECORDIO}' for a streaming call"),
        ));
    }
    let message_accept = headers
        .get(MESSAGE_ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Format::negotiate(message_accept.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Message-Accept' to allow application/json or application/x-protobuf",
        )
    })
}

fn output_record(format: Format, stream: Stream, data: Bytes) -> Bytes {
    let kind = match stream {
        Stream::Stdout => process_io::data::Type::Stdout,
        Stream::Stderr => process_io::data::Type::Stderr,
    };
    let message = ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(kind as i32),
            data: Some(data.to_vec()),
        }),
        control: None,
    };
    recordio::frame(&codec::encode(format, &message))
}

fn recordio_response(format: Format, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(RECORDIO));
    headers.insert(
        MESSAGE_CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    response
}

async fn launch_session(app: App, call: Call, format: Format) -> Result<Response, ApiError> {
    let launch = call
        .launch_nested_container_session
        .ok_or_else(|| missing("launch_nested_container_session"))?;
    let spec = nested_spec(&app, launch.container_id, launch.command, true).await?;
    let session = app
        .nested
        .launch(spec)
        .await
        .map_err(nested_error)?
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "no session output"))?;
    let guard = session.guard;
    let records =
        tokio_stream::wrappers::ReceiverStream::new(session.output).map(move |(stream, data)| {
            // The body owns the guard: when the client goes away, hyper drops
            // the body and the container is killed.
            let _ = &guard;
            Ok::<_, std::convert::Infallible>(output_record(format, stream, data))
        });
    Ok(recordio_response(format, Body::from_stream(records)))
}

/// Streams a nested container's output from its sandbox files, from the
/// start, until it exited and everything was sent.
fn attach_output(app: App, call: Call, format: Format) -> Result<Response, ApiError> {
    let id = call
        .attach_container_output
        .ok_or_else(|| missing("attach_container_output"))?
        .container_id
        .value;
    let (sandbox, mut exit) = app.nested.output_files(&id).map_err(nested_error)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        let mut files = Vec::new();
        for (name, stream) in [("stdout", Stream::Stdout), ("stderr", Stream::Stderr)] {
            if let Ok(file) = tokio::fs::File::open(sandbox.join(name)).await {
                files.push((file, stream));
            }
        }
        loop {
            let done = exit.borrow().is_some();
            let mut sent_any = false;
            for (file, stream) in &mut files {
                let mut buf = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = file.read(&mut buf).await {
                    sent_any = true;
                    let record = output_record(format, *stream, Bytes::copy_from_slice(&buf[..n]));
                    if tx.send(Ok(record)).await.is_err() {
                        return;
                    }
                }
            }
            if done && !sent_any {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(TAIL_INTERVAL) => {}
                _ = exit.changed() => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(recordio_response(
        format,
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    ))
}

/// ATTACH_CONTAINER_INPUT: a RecordIO request of calls, the first naming
/// the container, the rest carrying its stdin; empty data closes stdin.
async fn attach_input(app: App, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let message_type = headers
        .get(MESSAGE_CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .ok_or_else(|| missing("Message-Content-Type"))?;
    let format = Format::from_content_type(&message_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Message-Content-Type' of application/json or application/x-protobuf, got '{message_type}'"),
        )
    })?;
    let mut records = RecordStream::new(body);
    let next_call = async |records: &mut RecordStream<Body>| -> Result<Option<Call>, ApiError> {
        let Some(record) = records.next_record().await.map_err(|e| {
            ApiError::bad_request(format!("Failed to read the request stream: {e}"))
        })?
        else {
            return Ok(None);
        };
        codec::decode::<Call>(format, &record)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("Failed to parse a record into Call: {e}")))
    };
    let first = next_call(&mut records)
        .await?
        .ok_or_else(|| ApiError::bad_request("Expecting a first record naming the container"))?;
    let container_id = match (&first.r#type(), &first.attach_container_input) {
        (call::Type::AttachContainerInput, Some(input))
            if input.r#type() == call::attach_container_input::Type::ContainerId =>
        {
            input
                .container_id
                .clone()
                .ok_or_else(|| missing("attach_container_input.container_id"))?
        }
        _ => {
            return Err(ApiError::bad_request(
                "Expecting the first record to be ATTACH_CONTAINER_INPUT of type CONTAINER_ID",
            ));
        }
    };
    let mut stdin = Some(
        app.nested
            .take_stdin(&container_id.value)
            .map_err(nested_error)?,
    );
    while let Some(call) = next_call(&mut records).await? {
        let Some(io) = call.attach_container_input.and_then(|i| i.process_io) else {
            return Err(ApiError::bad_request(
                "Expecting 'attach_container_input.process_io'",
            ));
        };
        if io.r#type() != process_io::Type::Data {
            continue; // Heartbeats and TTY controls.
        }
        let data = io.data.and_then(|d| d.data).unwrap_or_default();
        if data.is_empty() {
            stdin = None; // EOF.
            continue;
        }
        if let Some(pipe) = stdin.as_mut()
            && nested::write_stdin(pipe, &data).await.is_err()
        {
            stdin = None; // The process closed its stdin or exited.
        }
    }
    Ok((StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response())
}
