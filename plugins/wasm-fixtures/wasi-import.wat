;; Imports a WASI function, which the host does not grant, and calls it in
;; prepare; the other methods never do.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))
  ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\17com.example.wasi_import\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
  (data (i32.const 96) "isolator.prepare")

  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

  (func $is_prepare (param $m i32) (param $len i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $len) (i32.const 16)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $m) (local.get $i)))
                    (i32.load8_u (i32.add (i32.const 96) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then unreachable))
    (i32.const 4096))

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 59)))

  (func (export "configure") (param i32 i32 i32 i32) (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "call") (param $m i32) (param $m_len i32) (param i32 i32) (result i32)
    (if (call $is_prepare (local.get $m) (local.get $m_len))
      (then
        (return (call $answer (i32.const 0) (i32.const 0)
          (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))))))
    (call $answer (i32.const 1) (local.get $m) (local.get $m_len)))
)
