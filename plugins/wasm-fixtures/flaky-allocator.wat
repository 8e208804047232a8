;; com.example.flaky_allocator: an allocator that traps on every ordinary
;; cycle that carries events, and on a `reset` cycle (the master rebuilding
;; its books after a failure) grants framework f1 one cpu of agent a1.
;; So a test sees a trap, then the rebuilt instance get the reset. It
;; speaks the core-module ABI of plugin-api/src/host/wasm/core.rs.
(module
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))

  ;; PluginInfo{name, version "0.1.0", kinds ["allocator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\1bcom.example.flaky_allocator\12\050.1.0\1a\09allocator\22\0fmesos.plugin.v1")
  ;; AllocateResponse{grants [Grant{f1, a1, "*", [cpus:1]}]}
  (data (i32.const 128)
    "\0a\20\0a\02f1\12\02a1\1a\01*\22\13\0a\04cpus\10\00\1a\09\09\00\00\00\00\00\00\f0\3f")
  (data (i32.const 192) "undecodable AllocateRequest")

  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

  (func (export "alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 4096))

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 64)))

  (func (export "configure") (param i32 i32 i32 i32) (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  ;; Reads a varint at $p (bounded by $end) into $value; the position
  ;; after it, or -1.
  (global $value (mut i32) (i32.const 0))
  (func $varint (param $p i32) (param $end i32) (result i32)
    (local $shift i32) (local $b i32)
    (global.set $value (i32.const 0))
    (loop $more
      (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const -1))))
      (if (i32.ge_u (local.get $shift) (i32.const 35)) (then (return (i32.const -1))))
      (local.set $b (i32.load8_u (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (global.set $value (i32.or (global.get $value)
        (i32.shl (i32.and (local.get $b) (i32.const 127)) (local.get $shift))))
      (local.set $shift (i32.add (local.get $shift) (i32.const 7)))
      (br_if $more (i32.and (local.get $b) (i32.const 128))))
    (local.get $p))

  ;; The top-level fields of AllocateRequest: events (1, bytes), now_ms
  ;; (2, varint), reset (3, varint).
  (func (export "call") (param i32 i32) (param $req i32) (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $tag i32) (local $events i32) (local $reset i32)
    (local.set $p (local.get $req))
    (local.set $end (i32.add (local.get $req) (local.get $len)))
    (block $done
      (loop $field
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $p (call $varint (local.get $p) (local.get $end)))
        (if (i32.lt_s (local.get $p) (i32.const 0))
          (then (return (call $answer (i32.const 2) (i32.const 192) (i32.const 27)))))
        (local.set $tag (global.get $value))
        (local.set $p (call $varint (local.get $p) (local.get $end)))
        (if (i32.lt_s (local.get $p) (i32.const 0))
          (then (return (call $answer (i32.const 2) (i32.const 192) (i32.const 27)))))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 2))
          (then
            (local.set $events (i32.const 1))
            (local.set $p (i32.add (local.get $p) (global.get $value)))))
        (if (i32.eq (local.get $tag) (i32.const 24))
          (then (local.set $reset (global.get $value))))
        (br $field)))
    (if (local.get $reset)
      (then (return (call $answer (i32.const 0) (i32.const 128) (i32.const 34)))))
    (if (local.get $events) (then unreachable))
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))
)
