;; Imports WASI preview 1 and calls it in prepare: writes a line to stdout,
;; reads the monotonic clock and 16 random bytes, and answers success if
;; every call did, `internal` otherwise. Unless its manifest grants `wasi`,
;; the first call (fd_write) traps; the other methods never call WASI.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))
  ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\17com.example.wasi_import\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
  (data (i32.const 96) "isolator.prepare")
  (data (i32.const 128) "a WASI call failed")
  ;; The line fd_write writes, and its iovec {ptr 2100, len 16}.
  (data (i32.const 2100) "hello from WASI\n")
  (data (i32.const 2048) "\34\08\00\00\10\00\00\00")

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

  (func $prepare (result i32)
    (local $failed i32)
    (local.set $failed (call $fd_write (i32.const 1) (i32.const 2048) (i32.const 1) (i32.const 2064)))
    (local.set $failed (i32.or (local.get $failed)
      (i32.ne (i32.load (i32.const 2064)) (i32.const 16))))
    (local.set $failed (i32.or (local.get $failed)
      (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 2200))))
    (local.set $failed (i32.or (local.get $failed)
      (call $random_get (i32.const 2300) (i32.const 16))))
    (if (local.get $failed)
      (then (return (call $answer (i32.const 3) (i32.const 128) (i32.const 18)))))
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "call") (param $m i32) (param $m_len i32) (param i32 i32) (result i32)
    (if (call $is_prepare (local.get $m) (local.get $m_len))
      (then (return (call $prepare))))
    (call $answer (i32.const 1) (local.get $m) (local.get $m_len)))
)
