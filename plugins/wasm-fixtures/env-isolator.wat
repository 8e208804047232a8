;; com.example.env_isolator in its WASM form, by hand: the same observable
;; behaviour as plugins/env-isolator (PLUGIN_GREETING and
;; PLUGIN_CONTAINER_ID in prepare, an implemented no-op cleanup, every
;; other method unimplemented), so the contract suite can compare the
;; forms. It speaks the core-module ABI of plugin-api/src/host/wasm/core.rs and
;; encodes its protobuf answers itself.
(module
  (memory (export "memory") 1)
  (func (export "mesos_plugin_abi") (result i32) (i32.const 1))

  ;; Inputs and built answers live above $heap; everything there belongs
  ;; to one exchange and is reused by the next `alloc`.
  (global $heap i32 (i32.const 4096))
  (global $top (mut i32) (i32.const 4096))

  ;; PluginInfo{name, version "0.1.0", kinds ["isolator"], api_versions ["mesos.plugin.v1"]}
  (data (i32.const 0) "\0a\18com.example.env_isolator\12\050.1.0\1a\08isolator\22\0fmesos.plugin.v1")
  (data (i32.const 64) "mesos.plugin.v1")
  (data (i32.const 96) "isolator.prepare")
  (data (i32.const 128) "isolator.cleanup")
  ;; env {name: PLUGIN_GREETING, value: hello-from-plugin}
  (data (i32.const 160) "\0a\24\0a\0fPLUGIN_GREETING\12\11hello-from-plugin")
  ;; the start of env {name: PLUGIN_CONTAINER_ID, value: ...}
  (data (i32.const 224) "\0a\13PLUGIN_CONTAINER_ID\12")
  ;; labels {key: com.example.env_isolator, value: prepared}
  (data (i32.const 256) "\12\24\0a\18com.example.env_isolator\12\08prepared")
  (data (i32.const 320) "the API version is not mesos.plugin.v1")
  (data (i32.const 384) "undecodable PrepareRequest")

  ;; The answer record every entry returns: status, ptr, len.
  (func $answer (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 1024) (local.get $status))
    (i32.store (i32.const 1028) (local.get $ptr))
    (i32.store (i32.const 1032) (local.get $len))
    (i32.const 1024))

  ;; `n` bytes above the top, growing the memory when needed.
  (func $reserve (param $n i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $top))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s
              (memory.grow (i32.sub
                (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                (memory.size)))
              (i32.const 0))
          (then unreachable))))
    (global.set $top (local.get $end))
    (local.get $p))

  (func (export "alloc") (param $n i32) (result i32)
    (global.set $top (global.get $heap))
    (call $reserve (local.get $n)))

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

  (func $copy (param $to i32) (param $from i32) (param $n i32) (result i32)
    (memory.copy (local.get $to) (local.get $from) (local.get $n))
    (i32.add (local.get $to) (local.get $n)))

  (func $put_varint (param $to i32) (param $v i32) (result i32)
    (loop $more
      (if (i32.ge_u (local.get $v) (i32.const 128))
        (then
          (i32.store8 (local.get $to) (i32.or (local.get $v) (i32.const 128)))
          (local.set $to (i32.add (local.get $to) (i32.const 1)))
          (local.set $v (i32.shr_u (local.get $v) (i32.const 7)))
          (br $more))))
    (i32.store8 (local.get $to) (local.get $v))
    (i32.add (local.get $to) (i32.const 1)))

  (func $varint_len (param $v i32) (result i32)
    (local $n i32)
    (local.set $n (i32.const 1))
    (block $done
      (loop $more
        (br_if $done (i32.lt_u (local.get $v) (i32.const 128)))
        (local.set $v (i32.shr_u (local.get $v) (i32.const 7)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $more)))
    (local.get $n))

  ;; Reads a varint at $p (bounded by $end) into $value; returns the
  ;; position after it, or -1 if it runs past $end or over 32 bits.
  (global $value (mut i32) (i32.const 0))
  (func $get_varint (param $p i32) (param $end i32) (result i32)
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

  (func (export "describe") (result i32)
    (call $answer (i32.const 0) (i32.const 0) (i32.const 60)))

  (func (export "configure") (param $api i32) (param $api_len i32) (param $cfg i32) (param $cfg_len i32) (result i32)
    (if (call $eq (local.get $api) (local.get $api_len) (i32.const 64) (i32.const 15))
      (then (return (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))))
    (call $answer (i32.const 2) (i32.const 320) (i32.const 38)))

  (func $prepare (param $req i32) (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $tag i32) (local $n i32)
    (local $id i32) (local $id_len i32) (local $out i32) (local $w i32)
    (local.set $p (local.get $req))
    (local.set $end (i32.add (local.get $req) (local.get $len)))
    ;; Walks the fields, keeping the last container_id (field 1) and
    ;; skipping the others.
    (block $done
      (loop $field
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $p (call $get_varint (local.get $p) (local.get $end)))
        (br_if $done (i32.lt_s (local.get $p) (i32.const 0)))
        (local.set $tag (global.get $value))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 0))
          (then
            (local.set $p (call $get_varint (local.get $p) (local.get $end)))
            (br $field)))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 1))
          (then (local.set $p (i32.add (local.get $p) (i32.const 8))) (br $field)))
        (if (i32.eq (i32.and (local.get $tag) (i32.const 7)) (i32.const 5))
          (then (local.set $p (i32.add (local.get $p) (i32.const 4))) (br $field)))
        (if (i32.ne (i32.and (local.get $tag) (i32.const 7)) (i32.const 2))
          (then (local.set $p (i32.const -1)) (br $done)))
        (local.set $p (call $get_varint (local.get $p) (local.get $end)))
        (br_if $done (i32.lt_s (local.get $p) (i32.const 0)))
        (local.set $n (global.get $value))
        (if (i32.gt_u (local.get $n) (i32.sub (local.get $end) (local.get $p)))
          (then (local.set $p (i32.const -1)) (br $done)))
        (if (i32.eq (local.get $tag) (i32.const 10))
          (then (local.set $id (local.get $p)) (local.set $id_len (local.get $n))))
        (local.set $p (i32.add (local.get $p) (local.get $n)))
        (br $field)))
    (if (i32.or (i32.lt_s (local.get $p) (i32.const 0)) (i32.gt_u (local.get $p) (local.get $end)))
      (then (return (call $answer (i32.const 2) (i32.const 384) (i32.const 26)))))
    ;; The answer: the greeting, the container's ID, the label.
    (local.set $out (call $reserve (i32.add (local.get $id_len) (i32.const 128))))
    (local.set $w (call $copy (local.get $out) (i32.const 160) (i32.const 38)))
    (i32.store8 (local.get $w) (i32.const 10))
    (local.set $w (call $put_varint (i32.add (local.get $w) (i32.const 1))
      (i32.add (i32.add (i32.const 22) (call $varint_len (local.get $id_len))) (local.get $id_len))))
    (local.set $w (call $copy (local.get $w) (i32.const 224) (i32.const 22)))
    (local.set $w (call $put_varint (local.get $w) (local.get $id_len)))
    (local.set $w (call $copy (local.get $w) (local.get $id) (local.get $id_len)))
    (local.set $w (call $copy (local.get $w) (i32.const 256) (i32.const 38)))
    (call $answer (i32.const 0) (local.get $out) (i32.sub (local.get $w) (local.get $out))))

  (func (export "call") (param $m i32) (param $m_len i32) (param $req i32) (param $req_len i32) (result i32)
    (if (call $eq (local.get $m) (local.get $m_len) (i32.const 96) (i32.const 16))
      (then (return (call $prepare (local.get $req) (local.get $req_len)))))
    (if (call $eq (local.get $m) (local.get $m_len) (i32.const 128) (i32.const 16))
      (then (return (call $answer (i32.const 0) (i32.const 0) (i32.const 0)))))
    ;; Unimplemented; the message is the method's name.
    (call $answer (i32.const 1) (local.get $m) (local.get $m_len)))
)
