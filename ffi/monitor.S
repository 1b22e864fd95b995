# gcr-monitor: a detached container's parent while it runs (gcr run -d).
#
# A container needs a parent that outlives `gcr run -d`, waits for it and
# records how it ended (conmon and containerd's shim are that for other
# runtimes). A Deno doing nothing but wait costs 17 MB per container; this
# program costs a few pages. gcr itself runs only at the two ends: to make
# the container, and to record its end and take it apart.
#
# Started as  gcr-monitor GCR… __monitor ARGS…  (GCR… is how to run gcr:
# the gcr script, or deno with its arguments), it:
#
#   1. names itself gcr-monitor (prctl PR_SET_NAME: it is run from a memfd,
#      whose name would be a descriptor number) and starts a session of its
#      own, so that closing the terminal does not end it;
#   2. forks gcr with the rest of its arguments, as they are: gcr makes the
#      container with clone(CLONE_PARENT), so the container is this
#      program's child, not gcr's, and its PR_SET_PDEATHSIG (SIGKILL) is
#      tied to this program: the container dies with its monitor;
#   3. points its own stdio at /dev/null: its stdout was the pipe on which
#      gcr run -d waits for gcr's one-line report, and must not hold it;
#   4. waits for both children. When gcr ends and nothing else is left (it
#      failed before the container was made, and said why), it exits with
#      gcr's status. When the container has ended and gcr has too (gcr
#      writes the container's record before it exits: the record must be
#      there before the end is), it execs  GCR… __exited STATUS  in its own
#      place, STATUS being the container's wait status in decimal: the same
#      pid, so `gcr stop` and `gcr rm`, which wait for the container's
#      monitor, wait until that gcr has recorded the exit and taken the
#      container's cgroup, network and (with --rm) folders away.
#
# Misused (no "__monitor" among its arguments, fewer than two), it exits
# 127 without doing anything; a failed fork exits 126, a failed exec of gcr
# (in the child, or for __exited) exits 125.
#
# No libc, no data section, no relocations: position-independent x86_64
# code that ffi/native_program.ts wraps in a 176-byte ELF header. Rebuild
# its bytes with `deno task native` after editing this file;
# tests/ffi/native_programs_test.ts checks that they match.

        .intel_syntax noprefix
        .text
        .globl  _start
_start:
        mov     rbx, [rsp]                      # argc
        cmp     rbx, 2
        jb      misused
        lea     r15, [rsp + rbx*8 + 16]         # envp
        lea     r14, [rsp + 16]                 # &argv[1]: gcr's command line

        # r13: &argv[i] of "__monitor", checked before anything is done.
        mov     r13, r14
1:      mov     rsi, [r13]
        test    rsi, rsi
        jz      misused
        lea     rdi, [rip + monitor_word]
2:      mov     al, [rsi]
        cmp     al, [rdi]
        jne     3f
        inc     rsi
        inc     rdi
        test    al, al
        jnz     2b
        jmp     4f
3:      add     r13, 8
        jmp     1b
4:      cmp     qword ptr [r13 + 8], 0          # gcr's own arguments must follow: their slots take STATUS
        je      misused

        sub     rsp, 64                         # [rsp]: a wait status; [rsp+16..]: its digits

        mov     eax, 157                        # prctl(PR_SET_NAME, "gcr-monitor")
        mov     edi, 15
        lea     rsi, [rip + own_name]
        syscall
        mov     eax, 112                        # setsid()
        syscall

        mov     eax, 57                         # fork()
        syscall
        test    rax, rax
        jz      run_gcr
        js      fork_failed
        mov     r12, rax                        # gcr's pid

        # stdio onto /dev/null (dup2 onto 0, 1 and 2; then close its own).
        lea     rdi, [rip + dev_null]
        mov     esi, 2                          # O_RDWR
        xor     edx, edx
        mov     eax, 2                          # open
        syscall
        test    eax, eax
        js      6f
        mov     ebx, eax
        xor     ebp, ebp
5:      mov     edi, ebx                        # dup2(null, 0), (null, 1), (null, 2)
        mov     esi, ebp
        mov     eax, 33
        syscall
        inc     ebp
        cmp     ebp, 3
        jb      5b
        cmp     ebx, 2
        jbe     6f
        mov     edi, ebx                        # close(null)
        mov     eax, 3
        syscall

6:      mov     rbx, -1                         # gcr's exit code, once it has ended
        mov     rbp, -1                         # the container's wait status, once it has ended
wait_any:
        mov     rdi, -1                         # wait4(-1, &status, 0, NULL)
        mov     rsi, rsp
        xor     edx, edx
        xor     r10d, r10d
        mov     eax, 61
        syscall
        cmp     rax, -4                         # EINTR
        je      wait_any
        test    rax, rax
        js      nothing_left                    # ECHILD: no child left to wait for
        mov     ecx, [rsp]
        cmp     rax, r12
        jne     container_ended
        # gcr ended: its exit code, or 125 when a signal ended it.
        mov     ebx, 125
        test    ecx, 0x7f
        jnz     7f
        movzx   ebx, ch
7:      cmp     rbp, -1
        jne     exited
        jmp     wait_any
container_ended:
        mov     ebp, ecx
        cmp     rbx, -1
        jne     exited
        jmp     wait_any

nothing_left:
        cmp     rbp, -1                         # the container ended before gcr: record it
        jne     exited
        mov     edi, ebx                        # gcr failed before the container was made
        and     edi, 0xff
        jmp     leave

exited:
        # The status in decimal, written backwards from the end of the buffer.
        lea     rsi, [rsp + 63]
        mov     byte ptr [rsi], 0
        mov     eax, ebp
        mov     ecx, 10
8:      xor     edx, edx
        div     ecx
        add     dl, '0'
        dec     rsi
        mov     [rsi], dl
        test    eax, eax
        jnz     8b
        # argv from "__monitor" on becomes "__exited", STATUS, NULL.
        lea     rax, [rip + exited_word]
        mov     [r13], rax
        mov     [r13 + 8], rsi
        mov     qword ptr [r13 + 16], 0
run_gcr:
        mov     rdi, [r14]                      # execve(argv[1], &argv[1], envp)
        mov     rsi, r14
        mov     rdx, r15
        mov     eax, 59
        syscall
        mov     edi, 125
        jmp     leave
fork_failed:
        mov     edi, 126
        jmp     leave
misused:
        mov     edi, 127
leave:
        mov     eax, 231                        # exit_group
        syscall

monitor_word:
        .asciz  "__monitor"
exited_word:
        .asciz  "__exited"
own_name:
        .asciz  "gcr-monitor"
dev_null:
        .asciz  "/dev/null"
