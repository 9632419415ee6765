/* tests/integration/mpi_dragon.c: an Open MPI program that is also a member of its job's Dragon fabric (fabric.bats). */
#include <stdio.h>
#include <unistd.h>

#include <mpi.h>

#include <dragon/dragon.h>

/*
 * mpi_dragon   prints "mpi RANK SIZE ALLREDUCE_SUM FABRIC_ID NODE_INDEX NODE_COUNT HOST" per rank;
 *              the sum is of the ranks (checked here too: "allreduce wrong" on stderr and exit 1)
 */
int main(int argc, char **argv)
{
	char host[256] = "?";
	int rank, size, sum = -1, rv, bad = 0;

	gethostname(host, sizeof(host) - 1);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	/* Joined between MPI calls: the two runtimes share the task, neither may disturb the other. */
	if ((rv = dragon_init())) {
		fprintf(stderr, "mpi_dragon rank %d on %s: %s: %s\n", rank, host, dragon_strerror(rv), dragon_errmsg());
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (sum != size * (size - 1) / 2) {
		fprintf(stderr, "mpi_dragon rank %d on %s: allreduce wrong: %d, not %d\n", rank, host, sum,
			size * (size - 1) / 2);
		bad = 1;
	}
	printf("mpi %d %d %d %s %u %u %s\n", rank, size, sum, dragon_fabric_id(), dragon_node_index(),
	       dragon_node_count(), host);
	fflush(stdout);
	if (dragon_finalize()) {
		fprintf(stderr, "mpi_dragon rank %d on %s: finalize: %s\n", rank, host, dragon_errmsg());
		bad = 1;
	}
	MPI_Finalize();
	return bad;
}
