;; com.example.cgroup_isolator: an isolator that uses the host calls.
;; In prepare it logs a line and asks the host to set `cpu.shares` to 321
;; in the cgroup of the container being prepared (or, configured with
;; "other", of a container the call is not about); a refusal fails the
;; prepare with "set_cgroup_knob was refused". Every other method is
;; unimplemented. It speaks the core-module ABI of
;; plugin-api/src/host/wasm/core.rs and imports `mesos_host`.
(module
  (import "mesos_host" "log" (func $log (param i32 i32 i32)))
  (import "mesos_host" "set_cgroup_knob"
    (func $set_cgroup_knob (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))

  ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\1bcom.example.cgroup_isolator\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
  (data (i32.const 96) "isolator.prepare")
  (data (i32.const 128) "cpu.shares")
  (data (i32.const 144) "321")
  (data (i32.const 160) "setting cpu.shares")
  (data (i32.const 192) "set_cgroup_knob was refused")
  (data (i32.const 224) "undecodable PrepareRequest")
  (data (i32.const 256) "other")
  (data (i32.const 272) "not-this-container")

  ;; 1 when configured with "other".
  (global $other (mut i32) (i32.const 0))

  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

  ;; Inputs go at 4096; one exchange at a time, up to a page's worth.
  (func (export "alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then unreachable))
    (i32.const 4096))

  (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 63)))

  (func (export "configure") (param $api i32) (param $api_len i32) (param $cfg i32) (param $cfg_len i32) (result i32)
    (global.set $other (call $eq (local.get $cfg) (local.get $cfg_len) (i32.const 256) (i32.const 5)))
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  ;; A PrepareRequest starts with container_id (field 1), shorter than
  ;; 128 bytes: 0x0a, its length, its bytes.
  (func $prepare (param $req i32) (param $len i32) (result i32)
    (local $id i32) (local $id_len i32)
    (if (i32.or (i32.lt_u (local.get $len) (i32.const 2))
                (i32.ne (i32.load8_u (local.get $req)) (i32.const 10)))
      (then (return (call $answer (i32.const 2) (i32.const 224) (i32.const 26)))))
    (local.set $id (i32.add (local.get $req) (i32.const 2)))
    (local.set $id_len (i32.load8_u (i32.add (local.get $req) (i32.const 1))))
    (if (i32.or (i32.ge_u (local.get $id_len) (i32.const 128))
                (i32.gt_u (local.get $id_len) (i32.sub (local.get $len) (i32.const 2))))
      (then (return (call $answer (i32.const 2) (i32.const 224) (i32.const 26)))))
    (if (global.get $other)
      (then (local.set $id (i32.const 272)) (local.set $id_len (i32.const 18))))
    (call $log (i32.const 2) (i32.const 160) (i32.const 18))
    (if (call $set_cgroup_knob
          (local.get $id) (local.get $id_len)
          (i32.const 128) (i32.const 10)
          (i32.const 144) (i32.const 3))
      (then (return (call $answer (i32.const 3) (i32.const 192) (i32.const 27)))))
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "call") (param $m i32) (param $mlen i32) (param $req i32) (param $len i32) (result i32)
    (if (call $eq (local.get $m) (local.get $mlen) (i32.const 96) (i32.const 16))
      (then (return (call $prepare (local.get $req) (local.get $len)))))
    (call $answer (i32.const 1) (local.get $m) (local.get $mlen)))
)
