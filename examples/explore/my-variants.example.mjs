// A user variant module (the README's worked example): the driver's open/release per device file,
// as the built-in variant per-file-open does it.
//   vfiosim explore examples/explore/two-device-files.yaml \
//       --variant-module examples/explore/my-variants.example.mjs --variant per-file-open-2
import { explorer } from 'vfiosim';

const { EINVAL, kfnOriginal, lockdepAssertHeld } = explorer.kit;
const firstOpen = kfnOriginal('vfio_df_device_first_open');
const lastClose = kfnOriginal('vfio_df_device_last_close');

export const variants = [
  {
    name: 'per-file-open-2',
    title: 'driver open/release per device file',
    description: 'open_device/close_device for every device file, not the first open and last close',
    overrides: {
      // replaces vfio_df_open (src/vfio/vfio_main.ts), called with the dev_set lock held
      *vfio_df_open(df) {
        lockdepAssertHeld(df.device.devSet.lock);
        if (df.device.openCount !== 0 && !df.group) return -EINVAL; // a cdev opens once
        df.device.openCount++;
        const ret = yield* firstOpen(df); // the driver's open, for every file
        if (ret) df.device.openCount--;
        return ret;
      },
      *vfio_df_close(df) {
        lockdepAssertHeld(df.device.devSet.lock);
        if (df.device.openCount === 0) return;
        yield* lastClose(df); // the driver's release, for every file
        df.device.openCount--;
      },
    },
  },
];
