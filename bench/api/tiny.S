/* The smallest guest ringvisor's ELF loader and QEMU's both accept:
 * entered in 64-bit mode at its physical load address (as a Linux vmlinux's
 * startup_64), it writes one byte to COM1 and then, built with -DREBOOT,
 * resets through port 0xCF9 (the VMM exits 0), otherwise halts with
 * interrupts off. bench/api times process start -> this byte. */
    .code64
    .globl _start
_start:
    cli
    mov $0x3f8, %dx
    mov $'!', %al
    out %al, %dx
#ifdef REBOOT
    mov $0xcf9, %dx
    mov $0x06, %al
    out %al, %dx
#endif
1:  hlt
    jmp 1b
