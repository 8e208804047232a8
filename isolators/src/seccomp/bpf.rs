//! Compiles seccomp rules into the classic BPF program the kernel runs on
//! every system call (`seccomp(2)`, `SECCOMP_MODE_FILTER`).
//!
//! The program:
//! 1. kills the process on a system call of another ABI (a 32-bit call on
//!    a 64-bit kernel has other numbers, so it would slip past the rules);
//! 2. for each system call with rules, in number order, jumps over that
//!    call's block unless the number matches. A block tries the call's
//!    rules that check arguments in the profile's order, the first whose
//!    checks all pass deciding; then the call's first rule without checks,
//!    or the default;
//! 3. answers the default action for every other call.
//!
//! Every jump is forward and short (one block at most), so the program
//! needs no long jumps; arguments are 64 bits compared as two 32-bit
//! halves, unsigned, as libseccomp does. The scan is linear in the number
//! of listed calls: a few hundred instructions for Docker's default
//! profile.

use mesos_plugin_api::isolator::SockFilter;

/// What the kernel does with a system call (`SECCOMP_RET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    KillProcess,
    KillThread,
    /// `SIGSYS`.
    Trap,
    /// Fails with this errno, without running.
    Errno(u16),
    /// Tells a ptrace tracer, with this message.
    Trace(u16),
    /// Runs, and is logged.
    Log,
    Allow,
}

impl Action {
    /// The value a `RET` instruction answers.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => 0x8000_0000,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Errno(errno) => 0x0005_0000 | u32::from(errno),
            Action::Trace(message) => 0x7ff0_0000 | u32::from(message),
            Action::Log => 0x7ffc_0000,
            Action::Allow => 0x7fff_0000,
        }
    }
}

/// How an argument is compared with a value, unsigned, on 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
    /// `arg & mask == value`.
    MaskedEq {
        mask: u64,
    },
}

/// One condition on an argument of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCheck {
    /// 0 to 5.
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

impl ArgCheck {
    /// Whether `arg` passes: what the compiled program computes.
    pub fn passes(&self, arg: u64) -> bool {
        match self.op {
            Op::Eq => arg == self.value,
            Op::Ne => arg != self.value,
            Op::Lt => arg < self.value,
            Op::Le => arg <= self.value,
            Op::Ge => arg >= self.value,
            Op::Gt => arg > self.value,
            Op::MaskedEq { mask } => arg & mask == self.value,
        }
    }
}

/// An action for a system call whose arguments pass every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub nr: u32,
    pub checks: Vec<ArgCheck>,
    pub action: Action,
}

/// Rules in the profile's order and the action for everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub default: Action,
    pub rules: Vec<Rule>,
}

/// The ABI a program admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// `AUDIT_ARCH_*` (linux/audit.h), what `seccomp_data.arch` holds.
    pub audit: u32,
    /// Numbers at or above this belong to another ABI sharing the
    /// architecture value (x32 on x86_64).
    pub foreign_from: Option<u32>,
}

impl Arch {
    /// The ABI this agent was built for; `None` where the compiler does
    /// not know it (the isolator then refuses to start).
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch {
                audit: 0xc000_003e,
                foreign_from: Some(0x4000_0000),
            })
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch {
                audit: 0xc000_00b7,
                foreign_from: None,
            })
        } else {
            None
        }
    }
}

/// The kernel's limit (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("system call {nr} has too many rules for one filter block")]
    BlockTooLong { nr: u32 },
    #[error("argument index {index} is out of range (0 to 5)")]
    ArgIndex { index: u8 },
    #[error("the filter needs {0} instructions, more than the kernel's {MAX_INSTRUCTIONS}")]
    TooLong(usize),
}

// Opcodes (linux/bpf_common.h, linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

// `struct seccomp_data` offsets; arguments are little-endian u64s.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Where a jump in a rule's checks goes, resolved once the rule is laid
/// out.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The next instruction.
    Next,
    /// The end of this check: the next check, or the rule's action.
    Pass,
    /// Past the rule's action: the next rule.
    Fail,
}

struct Pending {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

fn load(k: u32) -> Pending {
    Pending {
        code: LD_W_ABS,
        k,
        jt: Target::Next,
        jf: Target::Next,
    }
}

fn test(code: u16, k: u32, jt: Target, jf: Target) -> Pending {
    Pending { code, k, jt, jf }
}

fn halves(value: u64) -> (u32, u32) {
    // Truncation is the point: the high and the low word.
    ((value >> 32) as u32, value as u32)
}

/// One check's instructions; `Pass` and `Fail` as in [`Target`].
fn check_code(check: &ArgCheck) -> Result<Vec<Pending>, CompileError> {
    use Target::{Fail, Next, Pass};
    if check.index > 5 {
        return Err(CompileError::ArgIndex { index: check.index });
    }
    let lo_offset = ARGS + 8 * u32::from(check.index);
    let (lo_at, hi_at) = (lo_offset, lo_offset + 4);
    let (hi, lo) = halves(check.value);
    Ok(match check.op {
        Op::Eq => vec![
            load(hi_at),
            test(JEQ_K, hi, Next, Fail),
            load(lo_at),
            test(JEQ_K, lo, Pass, Fail),
        ],
        Op::Ne => vec![
            load(hi_at),
            test(JEQ_K, hi, Next, Pass),
            load(lo_at),
            test(JEQ_K, lo, Fail, Pass),
        ],
        // Greater: a greater high word decides; an equal one defers to
        // the low word.
        Op::Gt | Op::Ge => vec![
            load(hi_at),
            test(JGT_K, hi, Pass, Next),
            test(JEQ_K, hi, Next, Fail),
            load(lo_at),
            test(
                if check.op == Op::Gt { JGT_K } else { JGE_K },
                lo,
                Pass,
                Fail,
            ),
        ],
        // Less: the negation of greater-or-equal (and of greater).
        Op::Lt | Op::Le => vec![
            load(hi_at),
            test(JGT_K, hi, Fail, Next),
            test(JEQ_K, hi, Next, Pass),
            load(lo_at),
            test(
                if check.op == Op::Lt { JGE_K } else { JGT_K },
                lo,
                Fail,
                Pass,
            ),
        ],
        Op::MaskedEq { mask } => {
            let (mask_hi, mask_lo) = halves(mask);
            vec![
                load(hi_at),
                test(ALU_AND_K, mask_hi, Next, Next),
                test(JEQ_K, hi, Next, Fail),
                load(lo_at),
                test(ALU_AND_K, mask_lo, Next, Next),
                test(JEQ_K, lo, Pass, Fail),
            ]
        }
    })
}

/// A rule with checks: the checks, then its action; a failing check jumps
/// past the action.
fn rule_code(rule: &Rule) -> Result<Vec<SockFilter>, CompileError> {
    let mut pending: Vec<(Pending, usize)> = Vec::new();
    for check in &rule.checks {
        let code = check_code(check)?;
        let end = pending.len() + code.len();
        pending.extend(code.into_iter().map(|p| (p, end)));
    }
    let len = pending.len() + 1;
    let offset = |at: usize, target: Target, check_end: usize| {
        let to = match target {
            Target::Next => at + 1,
            Target::Pass => check_end,
            Target::Fail => len,
        };
        u8::try_from(to - at - 1).map_err(|_| CompileError::BlockTooLong { nr: rule.nr })
    };
    let mut out = Vec::with_capacity(len);
    for (at, (p, check_end)) in pending.iter().enumerate() {
        out.push(if p.code == LD_W_ABS || p.code == ALU_AND_K {
            stmt(p.code, p.k)
        } else {
            jump(
                p.code,
                p.k,
                offset(at, p.jt, *check_end)?,
                offset(at, p.jf, *check_end)?,
            )
        });
    }
    out.push(stmt(RET_K, rule.action.ret()));
    Ok(out)
}

/// Compiles `filter` for `arch`.
pub fn compile(arch: Arch, filter: &Filter) -> Result<Vec<SockFilter>, CompileError> {
    let kill = Action::KillProcess.ret();
    let mut out = vec![
        stmt(LD_W_ABS, ARCH),
        jump(JEQ_K, arch.audit, 1, 0),
        stmt(RET_K, kill),
        stmt(LD_W_ABS, NR),
    ];
    if let Some(foreign) = arch.foreign_from {
        out.push(jump(JGE_K, foreign, 0, 1));
        out.push(stmt(RET_K, kill));
    }
    let mut numbers: Vec<u32> = filter.rules.iter().map(|r| r.nr).collect();
    numbers.sort_unstable();
    numbers.dedup();
    for nr in numbers {
        let rules = filter.rules.iter().filter(|r| r.nr == nr);
        let mut block = Vec::new();
        for rule in rules.clone().filter(|r| !r.checks.is_empty()) {
            block.extend(rule_code(rule)?);
        }
        let otherwise = rules
            .clone()
            .find(|r| r.checks.is_empty())
            .map_or(filter.default, |r| r.action);
        // A call whose every rule answers the default needs no block.
        if otherwise == filter.default && rules.clone().all(|r| r.action == filter.default) {
            continue;
        }
        block.push(stmt(RET_K, otherwise.ret()));
        let skip = u8::try_from(block.len()).map_err(|_| CompileError::BlockTooLong { nr })?;
        // The number is still in the accumulator: blocks that load
        // arguments always return, so only skipped blocks fall through.
        out.push(jump(JEQ_K, nr, 0, skip));
        out.extend(block);
    }
    out.push(stmt(RET_K, filter.default.ret()));
    if out.len() > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const X86_64: Arch = Arch {
        audit: 0xc000_003e,
        foreign_from: Some(0x4000_0000),
    };

    /// Runs a program as the kernel would on one system call: what it
    /// answers, or a panic on anything the kernel would refuse to load
    /// (a jump past the end, an unknown opcode, a load out of bounds).
    pub(crate) fn run(program: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend(nr.to_le_bytes());
        data.extend(arch.to_le_bytes());
        data.extend(0u64.to_le_bytes());
        for arg in args {
            data.extend(arg.to_le_bytes());
        }
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = program[pc];
            let k = i.k;
            let taken = |cond: bool| 1 + usize::from(if cond { i.jt } else { i.jf });
            pc += match i.code {
                LD_W_ABS => {
                    let at = usize::try_from(k).unwrap();
                    a = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
                    1
                }
                ALU_AND_K => {
                    a &= k;
                    1
                }
                JEQ_K => taken(a == k),
                JGT_K => taken(a > k),
                JGE_K => taken(a >= k),
                RET_K => return k,
                other => panic!("opcode {other:#x}"),
            };
        }
    }

    fn rule(nr: u32, checks: &[(u8, Op, u64)], action: Action) -> Rule {
        Rule {
            nr,
            checks: checks
                .iter()
                .map(|&(index, op, value)| ArgCheck { index, op, value })
                .collect(),
            action,
        }
    }

    const EPERM: Action = Action::Errno(1);

    #[test]
    fn other_abis_are_killed_and_unlisted_calls_get_the_default() {
        let filter = Filter {
            default: EPERM,
            rules: vec![rule(0, &[], Action::Allow), rule(1, &[], Action::Allow)],
        };
        let program = compile(X86_64, &filter).unwrap();
        let kill = Action::KillProcess.ret();
        assert_eq!(run(&program, 0x4000_0003, 0, [0; 6]), kill, "i386");
        assert_eq!(
            run(&program, X86_64.audit, 0x4000_0000, [0; 6]),
            kill,
            "x32"
        );
        assert_eq!(run(&program, X86_64.audit, 0, [0; 6]), Action::Allow.ret());
        assert_eq!(run(&program, X86_64.audit, 1, [0; 6]), Action::Allow.ret());
        assert_eq!(run(&program, X86_64.audit, 2, [0; 6]), EPERM.ret());
        assert_eq!(run(&program, X86_64.audit, 500, [0; 6]), EPERM.ret());
    }

    #[test]
    fn every_comparison_agrees_with_unsigned_64_bit_arithmetic() {
        let interesting: Vec<u64> = [
            0,
            1,
            7,
            u64::from(u32::MAX),
            1 << 32,
            (1 << 32) + 7,
            0x8000_0000_0000_0000,
            u64::MAX - 1,
            u64::MAX,
        ]
        .into_iter()
        .flat_map(|v: u64| [v.wrapping_sub(1), v, v.wrapping_add(1)])
        .collect();
        let ops = [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Ge,
            Op::Gt,
            Op::MaskedEq { mask: 0xff },
            Op::MaskedEq {
                mask: 0xffff_0000_0000_00ff,
            },
        ];
        for op in ops {
            for &value in &interesting {
                for index in [0u8, 3, 5] {
                    let check = ArgCheck { index, op, value };
                    let filter = Filter {
                        default: EPERM,
                        rules: vec![Rule {
                            nr: 9,
                            checks: vec![check],
                            action: Action::Allow,
                        }],
                    };
                    let program = compile(X86_64, &filter).unwrap();
                    for &arg in &interesting {
                        let mut args = [0; 6];
                        args[usize::from(index)] = arg;
                        let expected = if check.passes(arg) {
                            Action::Allow
                        } else {
                            EPERM
                        };
                        assert_eq!(
                            run(&program, X86_64.audit, 9, args),
                            expected.ret(),
                            "{op:?} {value:#x} on arg{index} = {arg:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn checks_of_a_rule_all_apply_and_rules_of_a_call_are_alternatives() {
        // personality(0) or personality(8); clone without CLONE_NEWUSER
        // and with a small second argument.
        let filter = Filter {
            default: EPERM,
            rules: vec![
                rule(135, &[(0, Op::Eq, 0)], Action::Allow),
                rule(135, &[(0, Op::Eq, 8)], Action::Allow),
                rule(
                    56,
                    &[(0, Op::MaskedEq { mask: 0x1000_0000 }, 0), (1, Op::Lt, 100)],
                    Action::Allow,
                ),
            ],
        };
        let program = compile(X86_64, &filter).unwrap();
        let answer = |nr, a0, a1| run(&program, X86_64.audit, nr, [a0, a1, 0, 0, 0, 0]);
        assert_eq!(answer(135, 0, 0), Action::Allow.ret());
        assert_eq!(answer(135, 8, 0), Action::Allow.ret());
        assert_eq!(answer(135, 4, 0), EPERM.ret());
        assert_eq!(answer(56, 0x11, 99), Action::Allow.ret());
        assert_eq!(answer(56, 0x1000_0011, 99), EPERM.ret());
        assert_eq!(answer(56, 0x11, 100), EPERM.ret());
    }

    #[test]
    fn rules_with_checks_come_before_the_calls_plain_rule() {
        let filter = Filter {
            default: Action::Allow,
            rules: vec![
                rule(62, &[], EPERM),
                rule(62, &[(1, Op::Eq, 0)], Action::Allow),
                // Unreachable: the first plain rule decides.
                rule(62, &[], Action::KillProcess),
            ],
        };
        let program = compile(X86_64, &filter).unwrap();
        assert_eq!(
            run(&program, X86_64.audit, 62, [1, 0, 0, 0, 0, 0]),
            Action::Allow.ret()
        );
        assert_eq!(
            run(&program, X86_64.audit, 62, [1, 9, 0, 0, 0, 0]),
            EPERM.ret()
        );
    }

    #[test]
    fn rules_answering_the_default_cost_nothing() {
        let plain = compile(
            X86_64,
            &Filter {
                default: Action::Allow,
                rules: vec![],
            },
        )
        .unwrap();
        let redundant = compile(
            X86_64,
            &Filter {
                default: Action::Allow,
                rules: vec![rule(1, &[], Action::Allow), rule(2, &[], Action::Allow)],
            },
        )
        .unwrap();
        assert_eq!(plain, redundant);
    }

    #[test]
    fn what_the_kernel_would_refuse_is_an_error() {
        let bad_index = Filter {
            default: EPERM,
            rules: vec![rule(1, &[(6, Op::Eq, 0)], Action::Allow)],
        };
        assert_eq!(
            compile(X86_64, &bad_index),
            Err(CompileError::ArgIndex { index: 6 })
        );
        // 60 alternatives of 5 instructions overflow one block's jump.
        let crowded = Filter {
            default: EPERM,
            rules: (0..60)
                .map(|v| rule(7, &[(0, Op::Eq, v)], Action::Allow))
                .collect(),
        };
        assert_eq!(
            compile(X86_64, &crowded),
            Err(CompileError::BlockTooLong { nr: 7 })
        );
        let huge = Filter {
            default: EPERM,
            rules: (0..3000).map(|nr| rule(nr, &[], Action::Allow)).collect(),
        };
        assert!(matches!(
            compile(X86_64, &huge),
            Err(CompileError::TooLong(_))
        ));
    }
}
