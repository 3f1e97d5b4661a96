/* Test driver for a C file written by `python -m bnnlib export-c`: reads images of
   BNN_DRIVER_INPUT bytes from stdin until EOF, writes one class byte per image to stdout. */
#include <stdio.h>

#ifndef BNN_DRIVER_INPUT
#define BNN_DRIVER_INPUT 784
#endif

int bnn_predict(const unsigned char pixels[BNN_DRIVER_INPUT]);

int main(void) {
    unsigned char image[BNN_DRIVER_INPUT];
    while (fread(image, 1, sizeof image, stdin) == sizeof image) {
        int c = bnn_predict(image);
        if (c < 0 || c > 255 || fputc(c, stdout) == EOF) return 1;
    }
    return ferror(stdin) ? 1 : 0;
}
