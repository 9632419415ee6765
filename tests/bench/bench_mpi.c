/* tests/bench/bench_mpi.c: the Open MPI peer of B1 (ping-pong) and B2 (64-message windows, then an ack), and across namespaces of B4 (also its all-to-all). */
#include "bench_util.h"

#include <mpi.h>

#define WINDOW 64
#define A2A_SIZE 65536

/*
 * B4's all-to-all, 64 KiB per message between every pair of ranks, each way for SECS: first as
 * MPI_Alltoall (IMPL-coll: a collective, every round synchronous), then as a stream (IMPL): each
 * round every rank posts A2A_WINDOW receives from and sends to every other rank, then waits for
 * all. The aggregate MB/s counts what crossed between ranks (a rank's block to itself does not).
 */
#define A2A_WINDOW 16

static double a2a_round(int rank, int nranks, int coll, char *sb, char *rb, MPI_Request *req)
{
	int n = 0;

	if (coll) {
		MPI_Alltoall(sb, A2A_SIZE, MPI_BYTE, rb, A2A_SIZE, MPI_BYTE, MPI_COMM_WORLD);
		return (double)(nranks - 1) * A2A_SIZE;
	}
	for (int p = 0; p < nranks; p++) {
		if (p == rank)
			continue;
		for (int w = 0; w < A2A_WINDOW; w++)
			MPI_Irecv(rb + ((size_t)p * A2A_WINDOW + w) * A2A_SIZE, A2A_SIZE, MPI_BYTE, p, 3,
				  MPI_COMM_WORLD, &req[n++]);
	}
	for (int p = 0; p < nranks; p++) {
		if (p == rank)
			continue;
		for (int w = 0; w < A2A_WINDOW; w++)
			MPI_Isend(sb, A2A_SIZE, MPI_BYTE, p, 3, MPI_COMM_WORLD, &req[n++]);
	}
	MPI_Waitall(n, req, MPI_STATUSES_IGNORE);
	return (double)(nranks - 1) * A2A_WINDOW * A2A_SIZE;
}

static int alltoall(int rank, int nranks, double secs, const char *part, const char *impl)
{
	char *sb = calloc((size_t)nranks, (size_t)A2A_WINDOW * A2A_SIZE);
	char *rb = calloc((size_t)nranks, (size_t)A2A_WINDOW * A2A_SIZE);
	MPI_Request *req = calloc(2 * (size_t)nranks * A2A_WINDOW, sizeof(*req));
	char name[128];

	for (int coll = 1; coll >= 0; coll--) {
		double bytes = 0; /* what this rank received */
		long rounds = 0;
		int go = 1;
		for (int k = 0; k < 4; k++) /* warm-up: connections */
			a2a_round(rank, nranks, coll, sb, rb, req);
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = bench_now();
		while (go) {
			bytes += a2a_round(rank, nranks, coll, sb, rb, req);
			if (++rounds % 8 == 0) {
				go = bench_now() - t0 < secs;
				MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
			}
		}
		double dt = bench_now() - t0, all = 0;
		MPI_Reduce(&bytes, &all, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
		snprintf(name, sizeof(name), "%s%s", impl, coll ? "-coll" : "");
		if (rank == 0)
			bench_result(part, "alltoall", A2A_SIZE, name, "bw_MBps", all / dt / 1e6);
	}
	free(sb);
	free(rb);
	free(req);
	MPI_Finalize();
	return 0;
}

int main(int argc, char **argv)
{
	int rank, nranks, lat;
	long base;
	/* B4 reuses both loops over tcp with its own part and impl name: ... lat|bw ITERS B4 ompi-tcp */
	const char *part = argc > 4 ? argv[3] : NULL, *impl = argc > 4 ? argv[4] : "openmpi-sm";

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (argc > 4 && !strcmp(argv[1], "a2a") && nranks > 1)
		return alltoall(rank, nranks, atof(argv[2]), part, impl);
	if (argc < 2 || nranks != 2) {
		if (!rank)
			fprintf(stderr, "usage: mpirun -np 2 bench_mpi lat|bw [ITERS [PART IMPL]]\n"
					"       mpirun -np N bench_mpi a2a SECS PART IMPL\n");
		MPI_Finalize();
		return 2;
	}
	lat = !strcmp(argv[1], "lat");
	base = argc > 2 ? atol(argv[2]) : (lat ? 20000 : 200);
	bench_pin(rank);
	const size_t *sizes = lat ? bench_lat_sizes : bench_bw_sizes;
	size_t nsizes = lat ? BENCH_NELEM(bench_lat_sizes) : BENCH_NELEM(bench_bw_sizes);
	size_t maxsz = sizes[nsizes - 1];
	char *buf = calloc(WINDOW, maxsz);
	MPI_Request req[WINDOW];
	int peer = !rank;

	for (size_t i = 0; i < nsizes; i++) {
		int size = (int)sizes[i];
		long n = bench_iters(bench_scale(base), sizes[i]);
		long per = n / bench_reps() > 0 ? n / bench_reps() : 1;
		double t[BENCH_REPS];
		for (int r = -1; r < bench_reps(); r++) {
			MPI_Barrier(MPI_COMM_WORLD);
			double t0 = bench_now();
			for (long k = 0; k < per; k++) {
				if (lat && rank == 0) {
					MPI_Send(buf, size, MPI_BYTE, peer, 0, MPI_COMM_WORLD);
					MPI_Recv(buf, size, MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				} else if (lat) {
					MPI_Recv(buf, size, MPI_BYTE, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
					MPI_Send(buf, size, MPI_BYTE, peer, 0, MPI_COMM_WORLD);
				} else if (rank == 0) {
					for (int m = 0; m < WINDOW; m++)
						MPI_Isend(buf, size, MPI_BYTE, peer, 1, MPI_COMM_WORLD, &req[m]);
					MPI_Waitall(WINDOW, req, MPI_STATUSES_IGNORE);
					MPI_Recv(buf, 1, MPI_BYTE, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				} else {
					/* a buffer per message, as the receiver of a stream would have */
					for (int m = 0; m < WINDOW; m++)
						MPI_Irecv(buf + (size_t)m * size, size, MPI_BYTE, peer, 1,
							  MPI_COMM_WORLD, &req[m]);
					MPI_Waitall(WINDOW, req, MPI_STATUSES_IGNORE);
					MPI_Send(buf, 1, MPI_BYTE, peer, 2, MPI_COMM_WORLD);
				}
			}
			double dt = bench_now() - t0;
			if (r >= 0)
				t[r] = lat ? dt / per / 2 * 1e6 : (double)size * WINDOW * per / dt / 1e6;
		}
		if (rank == 0 && lat)
			bench_result(part ? part : "B1", "pingpong", sizes[i], impl, "lat_us", bench_median(t, bench_reps()));
		else if (rank == 0)
			bench_result(part ? part : "B2", "stream", sizes[i], impl, "bw_MBps", bench_median(t, bench_reps()));
	}
	free(buf);
	MPI_Finalize();
	return 0;
}
