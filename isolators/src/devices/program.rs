//! Device rules compiled to an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, what cgroups v2 has instead of v1's
//! `devices.allow`. The kernel runs it on every open and mknod of a
//! device node by a process of the cgroup, with a `bpf_cgroup_dev_ctx`
//! (`access_type` = access << 16 | type, `major`, `minor`); it answers 1
//! to allow and 0 to refuse (EPERM).
//!
//! The program tries each rule in turn and allows at the first that
//! matches; falling off the end refuses. A rule matches when its type,
//! major and minor match (a wildcard always does) and the access asked
//! for is within the access it gives.

use super::rules::{ALL, Kind, Rule};

/// One eBPF instruction, as the kernel reads it (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// Destination register in the low nibble, source in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (class | operation | source) of the instructions used here.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const ALU64_MOV_X: u8 = 0xbf; // dst = src
const ALU64_AND_K: u8 = 0x57; // dst &= imm
const ALU64_RSH_K: u8 = 0x77; // dst >>= imm
const JMP_JNE_K: u8 = 0x55; // if dst != imm: pc += off
const JMP_JNE_X: u8 = 0x5d; // if dst != src: pc += off
const JMP_EXIT: u8 = 0x95; // return r0

// The kernel's `BPF_DEVCG_DEV_*`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: r1 is the context on entry, then scratch; r2 the device's
// type, r3 the access asked for, r4 its major, r5 its minor; r0 the
// answer.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program allowing what `rules` allow and refusing the rest.
pub fn device_filter(rules: &[Rule]) -> Vec<Insn> {
    let mut program = vec![
        insn(LDX_MEM_W, TYPE, R1, 0, 0),
        insn(ALU64_MOV_X, ACCESS, TYPE, 0, 0),
        insn(ALU64_AND_K, TYPE, 0, 0, 0xffff),
        insn(ALU64_RSH_K, ACCESS, 0, 0, 16),
        insn(LDX_MEM_W, MAJOR, R1, 4, 0),
        insn(LDX_MEM_W, MINOR, R1, 8, 0),
    ];
    for rule in rules {
        program.extend(rule_block(rule));
    }
    program.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    program.push(insn(JMP_EXIT, 0, 0, 0, 0));
    program
}

/// A rule's checks, each jumping past the block when it fails, then
/// "allow".
fn rule_block(rule: &Rule) -> Vec<Insn> {
    let mut block = Vec::new();
    let kind = match rule.kind {
        Kind::Char => DEV_CHAR,
        Kind::Block => DEV_BLOCK,
    };
    block.push(insn(JMP_JNE_K, TYPE, 0, 0, kind));
    if rule.access & ALL != ALL {
        // Asked & given != asked: something asked for is not given.
        block.push(insn(ALU64_MOV_X, R1, ACCESS, 0, 0));
        block.push(insn(ALU64_AND_K, R1, 0, 0, i32::from(rule.access)));
        block.push(insn(JMP_JNE_X, R1, ACCESS, 0, 0));
    }
    // Device numbers are 32-bit; the kernel compares them as such.
    if let Some(major) = rule.major {
        block.push(insn(JMP_JNE_K, MAJOR, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        block.push(insn(JMP_JNE_K, MINOR, 0, 0, minor as i32));
    }
    block.push(insn(ALU64_MOV_K, R0, 0, 0, 1));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    // Each jump lands just past the block: a block is a few instructions,
    // far from i16's range.
    let len = block.len();
    for (at, insn) in block.iter_mut().enumerate() {
        if matches!(insn.code, JMP_JNE_K | JMP_JNE_X) {
            insn.off = (len - at - 1) as i16;
        }
    }
    block
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::devices::rules::{DEFAULT_WHITELIST, MKNOD, READ, WRITE};

    /// Runs `program` as the kernel would on a device access: the few
    /// instructions [`device_filter`] emits, with the verifier's
    /// guarantees checked (jumps forward and in range, registers read
    /// only once written, an exit reached).
    pub(crate) fn run(program: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [(u32::from(access) << 16) | kind as u32, major, minor];
        let mut regs: [Option<u64>; 11] = [None; 11];
        let reg = |regs: &[Option<u64>; 11], r: u8| regs[usize::from(r)].expect("unset register");
        let mut pc = 0usize;
        loop {
            let i = program[pc];
            let (dst, src) = (i.regs & 0xf, i.regs >> 4);
            let mut next = pc + 1;
            match i.code {
                LDX_MEM_W => {
                    assert!(src == R1 && pc < 6, "the context is read in the prologue");
                    regs[usize::from(dst)] = Some(u64::from(ctx[(i.off / 4) as usize]));
                }
                ALU64_MOV_K => regs[usize::from(dst)] = Some(i.imm as u64),
                ALU64_MOV_X => regs[usize::from(dst)] = Some(reg(&regs, src)),
                ALU64_AND_K => {
                    regs[usize::from(dst)] = Some(reg(&regs, dst) & (i.imm as i64 as u64))
                }
                ALU64_RSH_K => regs[usize::from(dst)] = Some(reg(&regs, dst) >> i.imm),
                JMP_JNE_K | JMP_JNE_X => {
                    let other = if i.code == JMP_JNE_K {
                        i.imm as i64 as u64
                    } else {
                        reg(&regs, src)
                    };
                    assert!(i.off >= 0, "jumps go forward");
                    if reg(&regs, dst) != other {
                        next = pc + 1 + i.off as usize;
                    }
                }
                JMP_EXIT => return reg(&regs, R0),
                code => panic!("unexpected opcode {code:#x}"),
            }
            assert!(next < program.len(), "jump out of the program");
            pc = next;
        }
    }

    #[test]
    fn the_default_whitelist_allows_its_devices_and_nothing_else() {
        let program = device_filter(&DEFAULT_WHITELIST);
        let allowed = |kind, access, major, minor| run(&program, kind, access, major, minor) == 1;
        // /dev/null, every access; /dev/pts/7.
        assert!(allowed(DEV_CHAR, READ | WRITE, 1, 3));
        assert!(allowed(DEV_CHAR, MKNOD, 1, 3));
        assert!(allowed(DEV_CHAR, READ, 136, 7));
        // mknod of anything, but nothing more.
        assert!(allowed(DEV_BLOCK, MKNOD, 8, 0));
        assert!(!allowed(DEV_BLOCK, READ, 8, 0));
        assert!(!allowed(DEV_CHAR, MKNOD | READ, 10, 237));
        // /dev/loop-control, /dev/kmsg, a disk.
        assert!(!allowed(DEV_CHAR, READ, 10, 237));
        assert!(!allowed(DEV_CHAR, READ, 1, 11));
        assert!(!allowed(DEV_BLOCK, READ | WRITE, 254, 0));
        // The type counts: a block device numbered 1:3 is not /dev/null.
        assert!(!allowed(DEV_BLOCK, READ, 1, 3));
    }

    #[test]
    fn a_rule_gives_only_its_access() {
        let kmsg_read = Rule {
            kind: Kind::Char,
            major: Some(1),
            minor: Some(11),
            access: READ,
        };
        let program = device_filter(&[kmsg_read]);
        assert_eq!(run(&program, DEV_CHAR, READ, 1, 11), 1);
        assert_eq!(run(&program, DEV_CHAR, WRITE, 1, 11), 0);
        assert_eq!(run(&program, DEV_CHAR, READ | WRITE, 1, 11), 0);
        assert_eq!(run(&program, DEV_CHAR, READ, 1, 12), 0);
        // Nothing at all refuses everything.
        assert_eq!(run(&device_filter(&[]), DEV_CHAR, READ, 1, 3), 0);
    }
}
