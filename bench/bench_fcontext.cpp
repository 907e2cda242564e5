/* SPDX-License-Identifier: MIT */
// Boost.Context's raw switch, the floor for a stackful coroutine switch: two contexts
// ping-ponging through jump_fcontext. Prints `@bench switch 1 boost-fcontext ...` records
// for bench_tasks. Each run is a fresh process (this program re-executes itself).
// usage: bench_fcontext SWITCHES REPEAT   |   bench_fcontext --one SWITCHES
#include <boost/context/detail/fcontext.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ctx = boost::context::detail;

static void body(ctx::transfer_t t)
{
    for (;;)
        t = ctx::jump_fcontext(t.fctx, nullptr);
}

static double one(long switches)
{
    static char stack[64 * 1024];
    ctx::fcontext_t c = ctx::make_fcontext(stack + sizeof stack, sizeof stack, body);
    long rounds = switches / 2;
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < rounds; i++)
        c = ctx::jump_fcontext(c, nullptr).fctx;
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    return dt.count() / double(2 * rounds) * 1e9;
}

int main(int argc, char **argv)
{
    if (argc == 3 && std::strcmp(argv[1], "--one") == 0) {
        std::printf("%.6f\n", one(std::atol(argv[2])));
        return 0;
    }
    if (argc != 3)
        return 2;
    int repeat = std::atoi(argv[2]);
    std::string cmd = std::string(argv[0]) + " --one " + argv[1];
    std::printf("@bench switch 1 boost-fcontext ns_per_switch");
    for (int r = 0; r <= repeat; r++) {
        FILE *p = popen(cmd.c_str(), "r");
        double v = 0;
        if (!p || std::fscanf(p, "%lf", &v) != 1)
            return 1;
        pclose(p);
        if (r > 0)  // the first, cold run is dropped
            std::printf(" %g", v);
    }
    std::printf("\n");
    return 0;
}
