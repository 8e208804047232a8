;; A component of the `mesos:plugin` world that imports a WASI interface, which
;; the host does not grant, and calls it in `call("isolator.prepare", ...)`;
;; every other call answers `unimplemented`.
(component
  (import "wasi:random/insecure@0.2.0" (instance $random
    (export "get-insecure-random-u64" (func (result u64)))))
  (core func $random (canon lower (func $random "get-insecure-random-u64")))

  (core module $plugin
    (import "wasi" "random" (func $random (result i64)))
    (memory (export "memory") 1)
    ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
    (data (i32.const 64) "\0a\17com.example.wasi_import\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
    (data (i32.const 128) "isolator.prepare")

    ;; Arguments go at 4096 and above, one after the other.
    (global $top (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32) (param $size i32) (result i32)
      (global.get $top)
      (global.set $top (i32.add (global.get $top) (local.get $size))))

    (func (export "describe") (result i32)
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 59))
      (i32.const 0))

    (func (export "configure") (param i32 i32 i32 i32) (result i32)
      (global.set $top (i32.const 4096))
      (i32.store8 (i32.const 0) (i32.const 0))
      (i32.const 0))

    ;; `err(unimplemented(method))`, or the import's trap for prepare.
    (func (export "call") (param $m i32) (param $m_len i32) (param i32 i32) (result i32)
      (global.set $top (i32.const 4096))
      (if (i32.eq (local.get $m_len) (i32.const 16))
        (then
          (if (i64.eq (i64.load (local.get $m)) (i64.load (i32.const 128)))
            (then
              (if (i64.eq (i64.load offset=8 (local.get $m)) (i64.load (i32.const 136)))
                (then (drop (call $random))))))))
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store8 (i32.const 4) (i32.const 0))
      (i32.store (i32.const 8) (local.get $m))
      (i32.store (i32.const 12) (local.get $m_len))
      (i32.const 0))
  )
  (core instance $plugin (instantiate $plugin
    (with "wasi" (instance (export "random" (func $random))))))

  (type $plugin-error (variant
    (case "unimplemented" string)
    (case "invalid" string)
    (case "internal" string)))
  (func $describe (result (list u8))
    (canon lift (core func $plugin "describe") (memory (core memory $plugin "memory"))))
  (func $configure (param "api-version" string) (param "config" (list u8))
    (result (result (error $plugin-error)))
    (canon lift (core func $plugin "configure")
      (memory (core memory $plugin "memory")) (realloc (core func $plugin "realloc"))))
  (func $call (param "method" string) (param "payload" (list u8))
    (result (result (list u8) (error $plugin-error)))
    (canon lift (core func $plugin "call")
      (memory (core memory $plugin "memory")) (realloc (core func $plugin "realloc"))))
  (instance $envelope
    (export "plugin-error" (type $plugin-error))
    (export "describe" (func $describe))
    (export "configure" (func $configure))
    (export "call" (func $call)))
  (export "mesos:plugin/envelope@1.0.0" (instance $envelope))
)
