// Preloaded into a test peer (`node -r ./shifted_clock.cjs …`) to run it
// with its clock moved by SECUREAI_CLOCK_SHIFT_MS milliseconds, so that it
// issues assertions that are already expired (or not yet valid).
'use strict';
const shift = Number(process.env.SECUREAI_CLOCK_SHIFT_MS || 0);
if (shift) {
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) {
        super(RealDate.now() + shift);
      } else {
        super(...args);
      }
    }
    static now() {
      return RealDate.now() + shift;
    }
  }
  global.Date = ShiftedDate;
}
