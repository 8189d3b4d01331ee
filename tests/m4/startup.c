/* Bare-metal start of the export's test firmware on QEMU's mps2-an386 (Cortex-M4): the vector
 * table, .data and .bss, the FPU, and output and exit through Arm semihosting. */
#include <stdint.h>

#include "m4.h"

extern uint32_t m4_data_load[], m4_data_start[], m4_data_end[], m4_bss_start[], m4_bss_end[],
    m4_stack_top[];
int main(void);

/* A semihosting call: BKPT 0xAB with the operation in r0 and its argument in r1. */
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void m4_write(const char *text)
{
    semihost(0x04, text); /* SYS_WRITE0: a NUL-terminated string to the console */
}

void m4_exit(int ok)
{
    /* SYS_EXIT: ADP_Stopped_ApplicationExit ends QEMU with status 0, anything else with 1. */
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20024));
    for (;;)
        ;
}

static void reset(void)
{
    for (uint32_t *s = m4_data_load, *d = m4_data_start; d < m4_data_end;)
        *d++ = *s++;
    for (uint32_t *d = m4_bss_start; d < m4_bss_end;)
        *d++ = 0;
    /* CPACR: full access to CP10 and CP11, the FPU, before any float instruction runs. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    m4_exit(main() == 0);
}

static void fault(void)
{
    m4_write("fault\n");
    m4_exit(0);
}

/* The initial stack pointer, then the handlers: reset, NMI, hard fault, memory management,
 * bus and usage faults. */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[8] = {
    (uintptr_t)m4_stack_top, (uintptr_t)reset, (uintptr_t)fault, (uintptr_t)fault,
    (uintptr_t)fault,        (uintptr_t)fault, (uintptr_t)fault, 0,
};
