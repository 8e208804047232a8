;; com.example.cgroup_isolator as a component of the `mesos:plugin` world: the
;; host calls through `mesos:plugin/host@1.0.0`. In `call("isolator.prepare")`
;; it logs a line and asks the host to set `cpu.shares` to 321 in the cgroup
;; of the container being prepared (or, configured with "other", of a
;; container the call is not about), and answers the host's refusal as
;; `internal("set_cgroup_knob was refused: <why>")`. Every other call answers
;; `unimplemented`.
;;
;; One memory, owned by `$libc`, serves the lowered imports, the lifted
;; exports and the plugin's data, so it is made before both.
(component
  (import "mesos:plugin/host@1.0.0" (instance $host
    (type $level-def (enum "error" "warn" "info" "debug"))
    (export "level" (type $level (eq $level-def)))
    (export "log" (func (param "level" $level) (param "message" string)))
    (export "set-cgroup-knob" (func
      (param "container-id" string) (param "knob" string) (param "value" string)
      (result (result (error string)))))))

  (core module $libc
    (memory (export "memory") 1)
    ;; Arguments and the host's answers go at 8192 and above; each entry
    ;; starts again there.
    (global $top (export "top") (mut i32) (i32.const 8192))
    (func (export "realloc") (param i32 i32 i32) (param $size i32) (result i32)
      (global.get $top)
      (global.set $top (i32.add (global.get $top) (local.get $size)))))
  (core instance $libc (instantiate $libc))

  (core func $log (canon lower (func $host "log") (memory (core memory $libc "memory"))))
  (core func $set (canon lower (func $host "set-cgroup-knob")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))

  (core module $plugin
    (import "libc" "memory" (memory 1))
    (import "libc" "top" (global $top (mut i32)))
    (import "host" "log" (func $log (param i32 i32 i32)))
    (import "host" "set" (func $set (param i32 i32 i32 i32 i32 i32 i32)))
    ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
    (data (i32.const 64) "\0a\1bcom.example.cgroup_isolator\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
    (data (i32.const 160) "isolator.prepare")
    (data (i32.const 192) "cpu.shares")
    (data (i32.const 208) "321")
    (data (i32.const 224) "setting cpu.shares")
    (data (i32.const 256) "other")
    (data (i32.const 272) "not-this-container")
    (data (i32.const 320) "set_cgroup_knob was refused: ")
    (data (i32.const 384) "undecodable PrepareRequest")

    (global $other (mut i32) (i32.const 0))

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
      (global.set $top (i32.const 8192))
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 63))
      (i32.const 0))

    (func (export "configure") (param i32 i32) (param $cfg i32) (param $cfg_len i32) (result i32)
      (global.set $other (call $eq (local.get $cfg) (local.get $cfg_len) (i32.const 256) (i32.const 5)))
      (global.set $top (i32.const 8192))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0))

    ;; err(<case>(text at $ptr, $len)) in the return area.
    (func $error (param $case i32) (param $ptr i32) (param $len i32) (result i32)
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store8 (i32.const 4) (local.get $case))
      (i32.store (i32.const 8) (local.get $ptr))
      (i32.store (i32.const 12) (local.get $len))
      (i32.const 0))

    (func $prepare (param $req i32) (param $len i32) (result i32)
      (local $id i32) (local $id_len i32) (local $why i32) (local $why_len i32) (local $at i32)
      (if (i32.or (i32.lt_u (local.get $len) (i32.const 2))
                  (i32.ne (i32.load8_u (local.get $req)) (i32.const 10)))
        (then (return (call $error (i32.const 1) (i32.const 384) (i32.const 26)))))
      (local.set $id (i32.add (local.get $req) (i32.const 2)))
      (local.set $id_len (i32.load8_u (i32.add (local.get $req) (i32.const 1))))
      (if (i32.or (i32.ge_u (local.get $id_len) (i32.const 128))
                  (i32.gt_u (local.get $id_len) (i32.sub (local.get $len) (i32.const 2))))
        (then (return (call $error (i32.const 1) (i32.const 384) (i32.const 26)))))
      (if (global.get $other)
        (then (local.set $id (i32.const 272)) (local.set $id_len (i32.const 18))))
      (call $log (i32.const 2) (i32.const 224) (i32.const 18))
      ;; The host's answer goes at 32: its case, then the error's text.
      (call $set (local.get $id) (local.get $id_len)
        (i32.const 192) (i32.const 10) (i32.const 208) (i32.const 3) (i32.const 32))
      (if (i32.eqz (i32.load8_u (i32.const 32)))
        (then
          ;; ok(empty PrepareResponse)
          (i32.store8 (i32.const 0) (i32.const 0))
          (i32.store (i32.const 4) (i32.const 0))
          (i32.store (i32.const 8) (i32.const 0))
          (return (i32.const 0))))
      ;; internal("set_cgroup_knob was refused: " + why)
      (local.set $why (i32.load (i32.const 36)))
      (local.set $why_len (i32.load (i32.const 40)))
      (local.set $at (global.get $top))
      (global.set $top (i32.add (local.get $at) (i32.add (i32.const 29) (local.get $why_len))))
      (memory.copy (local.get $at) (i32.const 320) (i32.const 29))
      (memory.copy (i32.add (local.get $at) (i32.const 29)) (local.get $why) (local.get $why_len))
      (call $error (i32.const 2) (local.get $at) (i32.add (i32.const 29) (local.get $why_len))))

    (func (export "call") (param $m i32) (param $m_len i32) (param $req i32) (param $len i32) (result i32)
      (local $answer i32)
      (if (call $eq (local.get $m) (local.get $m_len) (i32.const 160) (i32.const 16))
        (then (local.set $answer (call $prepare (local.get $req) (local.get $len))))
        (else (local.set $answer (call $error (i32.const 0) (local.get $m) (local.get $m_len)))))
      ;; The next entry's arguments may reuse this one's room.
      (global.set $top (i32.const 8192))
      (local.get $answer))
  )
  (core instance $plugin (instantiate $plugin
    (with "libc" (instance $libc))
    (with "host" (instance (export "log" (func $log)) (export "set" (func $set))))))

  (type $plugin-error (variant
    (case "unimplemented" string)
    (case "invalid" string)
    (case "internal" string)))
  (func $describe (result (list u8))
    (canon lift (core func $plugin "describe") (memory (core memory $libc "memory"))))
  (func $configure (param "api-version" string) (param "config" (list u8))
    (result (result (error $plugin-error)))
    (canon lift (core func $plugin "configure")
      (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (func $call (param "method" string) (param "payload" (list u8))
    (result (result (list u8) (error $plugin-error)))
    (canon lift (core func $plugin "call")
      (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (instance $envelope
    (export "plugin-error" (type $plugin-error))
    (export "describe" (func $describe))
    (export "configure" (func $configure))
    (export "call" (func $call)))
  (export "mesos:plugin/envelope@1.0.0" (instance $envelope))
)
