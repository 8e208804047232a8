;; Traps (`unreachable`) in prepare. Usage answers how many calls this
;; instance has served (as `processes`), which shows that the host
;; rebuilt the instance after a trap: the count starts over.
(module
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))
  (global $calls (mut i32) (i32.const 0))
  ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\1dcom.example.trapping_isolator\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
  (data (i32.const 96) "isolator.prepare")
  (data (i32.const 128) "isolator.usage")
  ;; UsageResponse{statistics{timestamp 0, processes <byte 13>}}
  (data (i32.const 160) "\0a\0c\09\00\00\00\00\00\00\00\00\f0\01\00")

  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

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

  ;; Inputs go to a fixed area: this fixture only reads method names.
  (func (export "alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then unreachable))
    (i32.const 4096))

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 65)))

  (func (export "configure") (param i32 i32 i32 i32) (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "call") (param $m i32) (param $m_len i32) (param i32 i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (call $eq (local.get $m) (local.get $m_len) (i32.const 96) (i32.const 16))
      (then unreachable))
    (if (call $eq (local.get $m) (local.get $m_len) (i32.const 128) (i32.const 14))
      (then
        (i32.store8 (i32.const 173) (i32.and (global.get $calls) (i32.const 127)))
        (return (call $answer (i32.const 0) (i32.const 160) (i32.const 14)))))
    (call $answer (i32.const 1) (local.get $m) (local.get $m_len)))
)
