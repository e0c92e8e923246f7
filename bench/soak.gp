# gnuplot script for bench/soak.sh: the agent's RSS, open fds and threads,
# and the replies per second, over one soak run. Set from the command line:
# datafile (agent_soak --data), outfile (the PNG), warmup (seconds), title.
set terminal pngcairo size 1000,900 font "sans,10"
set output outfile
set multiplot layout 3,1 title title
set grid
# The same left margin in every panel, so that their time axes line up.
set lmargin 10
set key top left
# Room above the highest line, so that a flat one does not sit on the frame.
set offsets 0, 0, graph 0.2, 0
set xlabel "seconds"
# The warm-up is shaded: the slopes are judged over what follows it.
set object 1 rect from 0, graph 0 to warmup, graph 1 behind fillcolor rgb "#eeeeee" fillstyle solid noborder

set ylabel "RSS (MiB)"
set yrange [0:*]
plot datafile using 1:($2/1024) with lines lw 2 lc rgb "#1f77b4" title "RSS"

set ylabel "count"
set yrange [0:*]
plot datafile using 1:3 with lines lw 2 lc rgb "#d62728" title "open fds", \
     datafile using 1:4 with lines lw 2 lc rgb "#2ca02c" title "threads"

set ylabel "replies/s"
set yrange [0:*]
plot datafile using 1:5 with lines lw 1 lc rgb "#9467bd" title "replies per second"
unset multiplot
