/* tests/bench/bench_mpi.c: the Open MPI peer of B1 (ping-pong) and B2 (64-message windows, then an ack), and across namespaces of B4 (also its all-to-all). */
#include "bench_util.h"

#include <mpi.h>

#define WINDOW 64
#define A2A_SIZE 65536

/*
 * B4's all-to-all: MPI_Alltoall of 64 KiB per pair of ranks, repeated for SECS; the aggregate
 * MB/s counts what crossed between ranks (each rank's block to itself is not counted).
 */
static int alltoall(int rank, int nranks, double secs, const char *part, const char *impl)
{
	char *sb = calloc((size_t)nranks, A2A_SIZE), *rb = calloc((size_t)nranks, A2A_SIZE);
	long iters = 0;
	int go = 1;

	for (int k = 0; k < 10; k++) /* warm-up: connections */
		MPI_Alltoall(sb, A2A_SIZE, MPI_BYTE, rb, A2A_SIZE, MPI_BYTE, MPI_COMM_WORLD);
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = bench_now();
	while (go) {
		MPI_Alltoall(sb, A2A_SIZE, MPI_BYTE, rb, A2A_SIZE, MPI_BYTE, MPI_COMM_WORLD);
		if (++iters % 16 == 0) {
			go = bench_now() - t0 < secs;
			MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
		}
	}
	double dt = bench_now() - t0;
	if (rank == 0)
		bench_result(part, "alltoall", A2A_SIZE, impl, "bw_MBps",
			     (double)nranks * (nranks - 1) * A2A_SIZE * iters / dt / 1e6);
	free(sb);
	free(rb);
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
