;; A hook that implements nothing: every hook point gets Mesos's default
;; (no change). Shows WASM hooks go through the same adapter as dylibs.
(module
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))
  ;; PluginInfo{name, version "0.1.0", kinds ["hook"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\15com.example.noop_hook\12\050.1.0\1a\04hook\22\0fmesos.plugin.v1")

  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

  (func (export "alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then unreachable))
    (i32.const 4096))

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 53)))

  (func (export "configure") (param i32 i32 i32 i32) (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "call") (param $m i32) (param $m_len i32) (param i32 i32) (result i32)
    (call $answer (i32.const 1) (local.get $m) (local.get $m_len)))
)
