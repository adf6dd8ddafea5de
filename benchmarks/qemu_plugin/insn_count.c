/*
 * insn_count: a QEMU TCG plugin that counts the guest instructions executed, with markers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Licence note: a TCG plugin is loaded into QEMU and built against QEMU's plugin API, whose
 * header (include/qemu/qemu-plugin.h) is GPL-2.0-or-later; the plugin is therefore a QEMU
 * extension and carries QEMU's licence. This folder (benchmarks/qemu_plugin/) is
 * GPL-2.0-or-later; the rest of edgemod is Apache-2.0 (see README.md here).
 *
 * Counting: every translated block gets an inline "add its instruction count to the total" op,
 * so the total is exact (a block is counted when it starts; blocks end at a syscall, so at a
 * syscall the total covers every instruction up to and including the `svc`). Inline ops are not
 * atomic: run the guest with one thread (the Python side does: XNNPACK with 1 thread, BLAS pools
 * off).
 *
 * Markers: when the guest calls close(fd) (aarch64 syscall 57) with fd = -0x5EED0000 - k,
 * 0 <= k < 65536 (the call fails harmlessly with EBADF), the plugin appends "marker <k> <total>"
 * to the results file. At exit it appends "total <total>". Options (`-plugin lib.so,key=value`):
 *   out=/path/file   results file (truncated at start); without it, results go to stderr.
 *
 * Build: gcc -shared -fPIC -O2 -o libinsn_count.so insn_count.c
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The declarations this plugin uses, copied from QEMU 7.2's include/qemu/qemu-plugin.h (plugin API
 * version 1), because Debian's qemu packages ship no plugin header.
 */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

extern QEMU_PLUGIN_EXPORT int qemu_plugin_version;

#define QEMU_PLUGIN_VERSION 1

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv);

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

struct qemu_plugin_tb;

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);

size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);

typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);

void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);

void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);

/* End of the QEMU 7.2 declarations. */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define SYSCALL_CLOSE_AARCH64 57
#define MARKER_BASE (-0x5EED0000LL)
#define MARKER_SPAN 0x10000LL

static uint64_t total;
static FILE *results;

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id; (void)vcpu_index; (void)a2; (void)a3; (void)a4; (void)a5; (void)a6; (void)a7;
    (void)a8;
    if (num != SYSCALL_CLOSE_AARCH64) {
        return;
    }
    /* close() takes an int: the upper 32 bits of x0 are unspecified by the ABI. */
    int64_t fd = (int32_t)(uint32_t)a1;
    int64_t k = MARKER_BASE - fd;
    if (k < 0 || k >= MARKER_SPAN) {
        return;
    }
    /* Flush at once: a guest killed later must not lose the markers it reached. */
    fprintf(results, "marker %" PRId64 " %" PRIu64 "\n", k, total);
    fflush(results);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id; (void)userdata;
    fprintf(results, "total %" PRIu64 "\n", total);
    fflush(results);
    if (results != stderr) {
        fclose(results);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    results = stderr;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            results = fopen(argv[i] + 4, "w");
            if (results == NULL) {
                fprintf(stderr, "insn_count: cannot open %s for writing\n", argv[i] + 4);
                return -1;
            }
        } else {
            fprintf(stderr, "insn_count: unknown option '%s' (known: out=/path/file)\n", argv[i]);
            return -1;
        }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
