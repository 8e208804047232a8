;; A component of the `mesos:plugin/plugin@1.0.0` world (plugin-api/wit/plugin.wit)
;; around a core module speaking the core-module ABI (plugin-api/src/host/wasm/core.rs).
;; `host::shell` puts a module where `@core` is (as `(core module $plugin ...)`): so
;; every core fixture has a component form without a second copy of its logic, and
;; `mesos-plugin-componentize` makes a component of any core-module plugin (one built
;; by the Rust SDK for wasm32, or by clang).
;;
;; The `$shell` module translates. Arguments arrive, by the canonical ABI, in the
;; shell's own memory (its `realloc` is a bump allocator there); the shell copies
;; them into the plugin's memory at the address the plugin's `alloc` gives, calls
;; the plugin, and copies the answer back into its own memory in the canonical
;; layout of the WIT result. The two memories are one module's first and second
;; (multi-memory).
(component
  ;; @core

  (core module $shell
    (import "plugin" "memory" (memory $theirs 0))
    (import "plugin" "alloc" (func $alloc (param i32) (result i32)))
    (import "plugin" "describe" (func $describe (result i32)))
    (import "plugin" "configure" (func $configure (param i32 i32 i32 i32) (result i32)))
    (import "plugin" "call" (func $call (param i32 i32 i32 i32) (result i32)))
    (memory $ours (export "memory") 1)

    ;; 0..16 is the return area; arguments and answers go above.
    (global $top (mut i32) (i32.const 16))

    (func $reserve (param $align i32) (param $size i32) (result i32)
      (local $at i32) (local $end i32)
      (local.set $at (i32.and
        (i32.add (global.get $top) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $at) (local.get $size)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size $ours) (i32.const 65536)))
        (then
          (if (i32.lt_s
                (memory.grow $ours (i32.sub
                  (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                  (memory.size $ours)))
                (i32.const 0))
            (then unreachable))))
      (global.set $top (local.get $end))
      (local.get $at))

    ;; The canonical ABI's allocator, for the arguments only: never frees.
    (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
      (call $reserve (local.get $align) (local.get $size)))

    ;; Copies the two arguments into the plugin's memory, back to back, as
    ;; the core ABI wants, and frees the shell's memory for the answer.
    (global $a (mut i32) (i32.const 0))
    (global $b (mut i32) (i32.const 0))
    (func $inputs (param $a i32) (param $a_len i32) (param $b i32) (param $b_len i32)
      (local $base i32)
      (local.set $base (call $alloc (i32.add (local.get $a_len) (local.get $b_len))))
      (memory.copy $theirs $ours (local.get $base) (local.get $a) (local.get $a_len))
      (memory.copy $theirs $ours
        (i32.add (local.get $base) (local.get $a_len)) (local.get $b) (local.get $b_len))
      (global.set $a (local.get $base))
      (global.set $b (i32.add (local.get $base) (local.get $a_len)))
      (global.set $top (i32.const 16)))

    ;; The plugin's answer record at $at (status, ptr, len in its memory) as
    ;; `result<list<u8>, plugin-error>` in the return area: the case at 0,
    ;; then either the list (ptr at 4, len at 8) or the error variant (its
    ;; case at 4, the message's ptr at 8, len at 12).
    (func $result (param $at i32) (result i32)
      (local $status i32) (local $len i32) (local $copy i32)
      (local.set $status (i32.load $theirs (local.get $at)))
      (local.set $len (i32.load $theirs offset=8 (local.get $at)))
      (local.set $copy (call $reserve (i32.const 1) (local.get $len)))
      (memory.copy $ours $theirs
        (local.get $copy) (i32.load $theirs offset=4 (local.get $at)) (local.get $len))
      (if (i32.eqz (local.get $status))
        (then
          (i32.store8 $ours (i32.const 0) (i32.const 0))
          (i32.store $ours (i32.const 4) (local.get $copy))
          (i32.store $ours (i32.const 8) (local.get $len))
          (return (i32.const 0))))
      (i32.store8 $ours (i32.const 0) (i32.const 1))
      ;; Status 1, 2, 3 are unimplemented, invalid, internal: cases 0, 1, 2.
      (i32.store8 $ours (i32.const 4)
        (select
          (i32.sub (local.get $status) (i32.const 1))
          (i32.const 2)
          (i32.le_u (i32.sub (local.get $status) (i32.const 1)) (i32.const 2))))
      (i32.store $ours (i32.const 8) (local.get $copy))
      (i32.store $ours (i32.const 12) (local.get $len))
      (i32.const 0))

    (func (export "describe") (result i32)
      (local $at i32)
      (global.set $top (i32.const 16))
      (local.set $at (call $result (call $describe)))
      ;; `describe` cannot fail in WIT: a failed answer is a trap.
      (if (i32.load8_u $ours (i32.const 0)) (then unreachable))
      (i32.const 4))

    (func (export "configure") (param i32 i32 i32 i32) (result i32)
      (call $inputs (local.get 0) (local.get 1) (local.get 2) (local.get 3))
      (call $result (call $configure
        (global.get $a) (local.get 1) (global.get $b) (local.get 3))))

    (func (export "call") (param i32 i32 i32 i32) (result i32)
      (call $inputs (local.get 0) (local.get 1) (local.get 2) (local.get 3))
      (call $result (call $call
        (global.get $a) (local.get 1) (global.get $b) (local.get 3))))
  )

  (core instance $plugin (instantiate $plugin))
  (core instance $shell (instantiate $shell (with "plugin" (instance $plugin))))

  (type $plugin-error (variant
    (case "unimplemented" string)
    (case "invalid" string)
    (case "internal" string)))
  (func $describe (result (list u8))
    (canon lift (core func $shell "describe") (memory (core memory $shell "memory"))))
  (func $configure (param "api-version" string) (param "config" (list u8))
    (result (result (error $plugin-error)))
    (canon lift (core func $shell "configure")
      (memory (core memory $shell "memory")) (realloc (core func $shell "realloc"))))
  (func $call (param "method" string) (param "payload" (list u8))
    (result (result (list u8) (error $plugin-error)))
    (canon lift (core func $shell "call")
      (memory (core memory $shell "memory")) (realloc (core func $shell "realloc"))))

  (instance $envelope
    (export "plugin-error" (type $plugin-error))
    (export "describe" (func $describe))
    (export "configure" (func $configure))
    (export "call" (func $call)))
  (export "mesos:plugin/envelope@1.0.0" (instance $envelope))
)
