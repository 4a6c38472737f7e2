// etch testbench (etch verify runs it). Verilog-2005 with delays.
`timescale 1ns/1ps

// Testbench: DRAM model, inputs in, outputs compared with golden.hex.
module etch_tb (
);
  localparam NS = 1;
  localparam IN = 64;
  localparam OUT = 10;
  localparam NB = 1;
  localparam LAT = 20;
  localparam MILLI = 500;
  localparam MAXC = 1000000;
  reg clk;
  reg rst;
  reg start;
  wire done;
  wire dram_req;
  wire dram_we;
  wire [31:0] dram_len;
  reg dram_rvalid;
  reg [31:0] dram_rbeat;
  reg [7:0] dram_rdata;
  reg dram_wready;
  wire dram_wvalid;
  wire [7:0] dram_wdata;
  etch_accel dut (
    .clk(clk),
    .rst(rst),
    .start(start),
    .done(done),
    .dram_req(dram_req),
    .dram_we(dram_we),
    .dram_len(dram_len),
    .dram_rvalid(dram_rvalid),
    .dram_rbeat(dram_rbeat),
    .dram_rdata(dram_rdata),
    .dram_wready(dram_wready),
    .dram_wvalid(dram_wvalid),
    .dram_wdata(dram_wdata)
  );
  reg [7:0] inputs [0:63];
  reg [7:0] golden [0:9];
  reg [7:0] dram_in [0:63];
  reg [7:0] dram_out [0:9];
  reg busy;
  reg we_q;
  integer len_q;
  integer wait_q;
  integer credit;
  integer beat_q;
  integer pend_beat;
  integer need;
  integer cycles;
  integer first;
  integer fd;
  integer ofd;
  integer smp;
  integer i;
  integer b;
  // clock: period 10 time units
  initial begin
    clk = 1'd0;
  end
  always begin
    #5;
    clk = !(clk);
  end
  always @(posedge clk) begin
    dram_rvalid <= 1'd0;
    dram_wready <= 1'd0;
    if (dram_wvalid) begin
      pend_beat <= (pend_beat + 1);
      if ((((pend_beat * 1) + 0) < len_q)) begin
        dram_out[((pend_beat * 1) + 0)] <= dram_wdata[0 +: 8];
      end
    end
    if (dram_req) begin
      busy <= 1'd1;
      we_q <= dram_we;
      len_q <= dram_len;
      wait_q <= LAT;
      credit <= 0;
      beat_q <= 0;
      pend_beat <= 0;
    end else begin
      if (busy) begin
        if ((wait_q != 0)) begin
          wait_q <= (wait_q - 1);
        end else begin
          credit <= (credit + MILLI);
          need = ((((beat_q + 1) * 1) < len_q) ? ((beat_q + 1) * 1) : len_q);
          if ((((credit + MILLI) * 1) >= (need * 1000))) begin
            if (we_q) begin
              dram_wready <= 1'd1;
            end else begin
              dram_rvalid <= 1'd1;
              dram_rbeat <= beat_q;
              dram_rdata[0 +: 8] <= dram_in[((beat_q * 1) + 0)];
            end
            beat_q <= (beat_q + 1);
            if ((((beat_q + 1) * 1) >= len_q)) begin
              busy <= 1'd0;
            end
          end
        end
      end
    end
  end
  initial begin
    fd = $fopen("sched.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image sched.hex");
      $fflush;
      $fatal(1, "missing memory image sched.hex");
    end
    $fclose(fd);
    fd = $fopen("weights.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image weights.hex");
      $fflush;
      $fatal(1, "missing memory image weights.hex");
    end
    $fclose(fd);
    fd = $fopen("params.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image params.hex");
      $fflush;
      $fatal(1, "missing memory image params.hex");
    end
    $fclose(fd);
    fd = $fopen("thresholds.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image thresholds.hex");
      $fflush;
      $fatal(1, "missing memory image thresholds.hex");
    end
    $fclose(fd);
    fd = $fopen("inputs.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image inputs.hex");
      $fflush;
      $fatal(1, "missing memory image inputs.hex");
    end
    $fclose(fd);
    fd = $fopen("golden.hex", "r");
    if ((fd == 0)) begin
      $display("ETCH ERROR missing memory image golden.hex");
      $fflush;
      $fatal(1, "missing memory image golden.hex");
    end
    $fclose(fd);
    ofd = $fopen("rtl_outputs.hex", "w");
    $readmemh("inputs.hex", inputs);
    $readmemh("golden.hex", golden);
    rst = 1'd1;
    start = 1'd0;
    busy = 1'd0;
    first = -1;
    @(posedge clk);
    @(posedge clk);
    @(posedge clk);
    #1;
    rst = 1'd0;
    for (smp = 0; smp < NS; smp = smp + 1) begin
      for (i = 0; i < IN; i = i + 1) begin
        dram_in[i] = inputs[((smp * IN) + i)];
      end
      @(posedge clk);
      #1;
      start = 1'd1;
      @(posedge clk);
      #1;
      start = 1'd0;
      cycles = 1;
      // count the cycles from the edge that took start to the edge that raised done
      for (i = 0; i < MAXC; i = i + 1) begin
        if ((done !== 1'd1)) begin
          @(posedge clk);
          #1;
          cycles = (cycles + 1);
        end
      end
      if ((done !== 1'd1)) begin
        $display("ETCH ERROR no done after %0d cycles", MAXC);
        $fflush;
        $fatal(1, "timeout");
      end
      $display("ETCH CYCLES sample=%0d cycles=%0d", smp, cycles);
      if (((first >= 0) && (first != cycles))) begin
        $display("ETCH ERROR sample %0d took %0d cycles, sample 0 took %0d", smp, cycles, first);
        $fflush;
        $fatal(1, "cycle counts differ");
      end
      first = cycles;
      for (i = 0; i < OUT; i = i + 1) begin
        $fdisplay(ofd, "%h", dram_out[i]);
      end
      $fflush(ofd);
      for (i = 0; i < OUT; i = i + 1) begin
        if ((^(dram_out[i]) === 1'bx)) begin
          $display("ETCH MISMATCH sample=%0d index=%0d got=x expected=%0d", smp, i, golden[((smp * OUT) + i)]);
          $fflush;
          $fatal(1, "output is X");
        end
        if ((dram_out[i] != golden[((smp * OUT) + i)])) begin
          $display("ETCH MISMATCH sample=%0d index=%0d got=%0d expected=%0d", smp, i, dram_out[i], golden[((smp * OUT) + i)]);
          $fflush;
          $fatal(1, "output differs from golden");
        end
      end
    end
    $display("ETCH PASS samples=%0d cycles=%0d", NS, first);
    $fclose(ofd);
    $fflush;
    $finish;
  end
endmodule

