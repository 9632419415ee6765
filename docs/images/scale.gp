# docs/images/scale.gp: the plot of docs/scale.md (scale.png) from scale.dat, scale-before.dat and scale-32.dat (make scale-plot; columns: tests/scale/measure.sh).
# Run in docs/images: gnuplot scale.gp
set terminal pngcairo size 1500,480 font "sans,10"
set output "scale.png"
set fit quiet
set fit logfile "/dev/null"
set key top left
set grid
set multiplot layout 1,3

# Columns of scale.dat (medians over the jobs of each size).
NODES = 1; BRINGUP = 3; FIRST = 4; JOIN = 5; PLAIN = 7; LSREADY = 9; HEADBOOT = 14; HEADJOIN = 16
# scale-32.dat has two more columns: the group of 4 per node, and the head's CPU per member (us)
MEMBER = 25

set title "On the test cluster (all nodes on 2 vCPUs, load 13-73)"
set xlabel "nodes"
set ylabel "ms (median of 5 jobs)"
set logscale x 2
set xrange [0.8:40]
set yrange [0:*]
plot "scale.dat" using NODES:FIRST with linespoints lc 1 title "first --dragon step (starts the fabric)", \
     "" using NODES:BRINGUP with linespoints lc 2 title "bring-up: first step - plain step", \
     "" using NODES:JOIN with linespoints lc 3 title "joining step (join\\_check)", \
     "" using NODES:PLAIN with linespoints lc 4 title "plain srun step", \
     "scale-32.dat" using NODES:BRINGUP with linespoints lc 2 dt 2 title "bring-up, second run (3 jobs, to 32 nodes)", \
     "" using NODES:JOIN with linespoints lc 3 dt 2 title "joining step, second run", \
     "" using NODES:PLAIN with linespoints lc 4 dt 2 title "plain step, second run"

set title "Head node's CPU per joining step of N tasks"
set xrange [0.8:40]
set yrange [0:5]
set ylabel "ms of CPU (median of 5 jobs x 5 steps)"
before(x) = a0 + a1 * x + a2 * x * x
after(x) = b0 + b1 * x
a0 = 0.1; a1 = 0.05; a2 = 0.01; b0 = 0.1; b1 = 0.03
fit before(x) "scale-before.dat" using NODES:HEADJOIN via a0, a1, a2
fit after(x) "scale.dat" using NODES:HEADJOIN via b0, b1
plot "scale-before.dat" using NODES:HEADJOIN with points pt 7 title "before: every Gone to every node", \
     before(x) with lines dt 2 title sprintf("%.3f + %.3f N + %.4f N^2", a0, a1, a2), \
     "scale.dat" using NODES:HEADJOIN with points pt 5 title "after: only where it reached", \
     "scale-32.dat" using NODES:HEADJOIN with points pt 4 title "after, second run (to 32 nodes)", \
     after(x) with lines dt 2 title sprintf("%.3f + %.3f N", b0, b1)

set title "The model at 1,000 nodes: the head node's serial work"
set ylabel "ms"
set logscale xy 10
set xrange [1:2000]
set yrange [0.05:20000]
set key bottom right
# The head's CPU at bring-up grows with the joins (one node: no links, no agent; left out).
boot(x) = c0 + c1 * x
c0 = 8; c1 = 0.1
fit boot(x) "scale.dat" using NODES:(column(NODES) > 1 ? column(HEADBOOT) : 1/0) via c0, c1
# Each node's own start-up (local services to ls.ready, agent included) at 2 nodes, where the
# nodes hardly compete for the 2 vCPUs: on a real cluster every node pays it at the same time.
stats "scale.dat" every ::1::1 using LSREADY nooutput
T0 = STATS_min
# GS placing a group: the head's CPU per member (placement, its output and end relayed back),
# from the groups of 4 per node in scale-32.dat; a node of 128 cores running one member per core.
member(x) = m0 + m1 * x
m0 = 1; m1 = 0.05
fit member(x) "scale-32.dat" using (4 * column(NODES)):(4 * column(NODES) * column(MEMBER) / 1000) via m0, m1
plot before(x) title "CPU per joining step, before", \
     after(x) title "CPU per joining step, after", \
     c1 * x title sprintf("joins at bring-up (%.2f ms per node)", c1), \
     T0 + c1 * x title sprintf("bring-up: %.0f ms per node in parallel + joins", T0), \
     m1 * 128 * x title sprintf("GS placing 128 processes per node (%.0f us each)", m1 * 1000), \
     50 dt 3 lw 2 title "joining-step budget: 50 ms", \
     3000 dt 3 lw 2 title "bring-up budget: 3 s"
unset multiplot
