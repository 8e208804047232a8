/*
 * mesos_plugin.h: the C ABI of dylib plugins, envelope version 1.
 *
 * A plugin is a shared library exporting one symbol,
 * mesos_plugin_entry_v1, which returns a pointer to a static table that
 * stays valid for the life of the process (plugins are never unloaded).
 * The table only grows at its end: set struct_size to sizeof(the table)
 * of this header.
 *
 * Payloads are protobuf messages of package mesos.plugin.v1
 * (proto/mesos/plugin/v1/isolator.proto). A call returns
 * MESOS_PLUGIN_OK and the encoded response in *out, or an error code and
 * a UTF-8 message in *out. Memory put in *out belongs to the plugin: the
 * host copies it and hands it back through free_buffer. Functions must
 * not unwind or longjmp out, and must be safe to call from any thread
 * (the host makes one call at a time per plugin).
 *
 * Kinds ("kinds" of PluginInfo, "kind" of plugin.toml) and their methods:
 *   "isolator": "isolator.recover", "isolator.prepare", "isolator.update",
 *     "isolator.limitation", "isolator.usage", "isolator.cleanup".
 *   "hook": "hook.master_launch_task_label_decorator",
 *     "hook.master_launch_task_resource_decorator",
 *     "hook.master_slave_lost_hook", "hook.slave_resources_decorator",
 *     "hook.slave_attributes_decorator", "hook.slave_run_task_label_decorator",
 *     "hook.slave_executor_environment_decorator",
 *     "hook.slave_pre_launch_decorator", "hook.slave_task_status_decorator",
 *     "hook.slave_post_fetch_hook", "hook.slave_remove_executor_hook".
 * Answer MESOS_PLUGIN_UNIMPLEMENTED for any method you do not implement;
 * the host then applies Mesos's default (for a hook: no change).
 */
#ifndef MESOS_PLUGIN_H
#define MESOS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MESOS_PLUGIN_ABI_VERSION 1u
#define MESOS_PLUGIN_API_VERSION "mesos.plugin.v1"

/* Call statuses: the values of mesos.plugin.v1.Error.Code. */
#define MESOS_PLUGIN_OK 0
#define MESOS_PLUGIN_UNIMPLEMENTED 1
#define MESOS_PLUGIN_INVALID 2
#define MESOS_PLUGIN_INTERNAL 3

typedef struct MesosPluginBuffer {
    uint8_t *ptr;
    size_t len;
    /* Free for the plugin's own use (a Rust plugin keeps the capacity). */
    size_t cap;
} MesosPluginBuffer;

typedef struct MesosPluginVTableV1 {
    uint32_t abi_version; /* MESOS_PLUGIN_ABI_VERSION */
    uint32_t struct_size; /* sizeof(MesosPluginVTableV1) */
    /* Writes an encoded mesos.plugin.v1.PluginInfo. */
    int32_t (*describe)(MesosPluginBuffer *out);
    /* The negotiated API version and the plugin's configuration bytes. */
    int32_t (*configure)(const uint8_t *api_version, size_t api_version_len,
                         const uint8_t *config, size_t config_len,
                         MesosPluginBuffer *out);
    int32_t (*call)(const uint8_t *method, size_t method_len,
                    const uint8_t *request, size_t request_len,
                    MesosPluginBuffer *out);
    void (*free_buffer)(MesosPluginBuffer buffer);
} MesosPluginVTableV1;

/* The one exported symbol. */
const MesosPluginVTableV1 *mesos_plugin_entry_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* MESOS_PLUGIN_H */
