/**
 * gcr's two programs that are not JavaScript (gcr-exec, the exec
 * trampoline, and gcr-monitor, a detached container's parent): position-
 * independent x86_64 code assembled from their .S sources into recorded
 * bytes (ffi/native_build.ts), wrapped here in an ELF header and put in a
 * sealed memfd, which is what is executed: never a file anyone could write.
 *
 * @module
 */
import { ERRNO, F_ADD_SEALS, F_SEAL, MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_EXEC } from "./constants.ts";
import { check, lastErrno, SyscallError } from "./errno.ts";
import { cString } from "./fds.ts";
import { libc } from "./libc.ts";

/** Where the code is loaded: the usual base of a static x86_64 program. */
const BASE = 0x400000;
const ELF_HEADER = 64;
const PROGRAM_HEADER = 56;
const HEADERS = ELF_HEADER + 2 * PROGRAM_HEADER;

/**
 * A program as an ELF executable: the ELF header, a PT_LOAD of the
 * whole file (read and execute: the code has no data to write), and a
 * PT_GNU_STACK that keeps the stack non-executable; then the code, whose
 * first byte is the entry point. Written here rather than by a linker, whose
 * output (notes, alignment) differs from one binutils to the next.
 */
export function elfProgram(code: Uint8Array): Uint8Array {
  const elf = new Uint8Array(HEADERS + code.length);
  const view = new DataView(elf.buffer);
  const u16 = (at: number, value: number) => view.setUint16(at, value, true);
  const u32 = (at: number, value: number) => view.setUint32(at, value, true);
  const u64 = (at: number, value: number) => view.setBigUint64(at, BigInt(value), true);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, /* 64-bit */ 1, /* little-endian */ 1 /* ELF version */]);
  u16(16, 2); // e_type: ET_EXEC
  u16(18, 62); // e_machine: EM_X86_64
  u32(20, 1); // e_version
  u64(24, BASE + HEADERS); // e_entry: the first byte of the code
  u64(32, ELF_HEADER); // e_phoff
  u16(52, ELF_HEADER); // e_ehsize
  u16(54, PROGRAM_HEADER); // e_phentsize
  u16(56, 2); // e_phnum
  const load = ELF_HEADER;
  u32(load, 1); // PT_LOAD
  u32(load + 4, 5); // PF_R | PF_X
  u64(load + 16, BASE); // p_vaddr (file offset 0)
  u64(load + 24, BASE); // p_paddr
  u64(load + 32, elf.length); // p_filesz
  u64(load + 40, elf.length); // p_memsz
  u64(load + 48, 0x1000); // p_align
  const stack = ELF_HEADER + PROGRAM_HEADER;
  u32(stack, 0x6474e551); // PT_GNU_STACK
  u32(stack + 4, 6); // PF_R | PF_W: not executable
  u64(stack + 48, 16);
  elf.set(code, HEADERS);
  return elf;
}

/**
 * A new memfd named `name` holding the program `code`, sealed so that no one (not even gcr)
 * can write, grow, shrink or make it non-executable again, close-on-exec.
 * Flags and seals that only Linux 6.3+ knows (MFD_EXEC, F_SEAL_EXEC) are
 * dropped where the kernel refuses them as unknown.
 */
export function sealedProgram(program: string, code: Uint8Array): number {
  const name = cString(program);
  let fd = libc().memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && lastErrno() === ERRNO.EINVAL) fd = libc().memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    throw new SyscallError(
      `memfd_create("${program}", MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_EXEC)`,
      lastErrno(),
      `${program} needs an executable memfd (is sysctl vm.memfd_noexec 2?)`,
    );
  }
  try {
    const elf = elfProgram(code);
    const written = Number(libc().write(fd, elf, BigInt(elf.length)));
    if (written !== elf.length) throw new SyscallError(`write(${program} memfd)`, lastErrno());
    const seals = F_SEAL.SEAL | F_SEAL.SHRINK | F_SEAL.GROW | F_SEAL.WRITE;
    if (libc().fcntl(fd, F_ADD_SEALS, seals | F_SEAL.EXEC) !== 0) {
      check(
        libc().fcntl(fd, F_ADD_SEALS, seals),
        "fcntl(F_ADD_SEALS, F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE)",
      );
    }
    return fd;
  } catch (error) {
    libc().close(fd);
    throw error;
  }
}
